#!/bin/sh
# Make the demo space's two voices: a scripted conversation between a host and a guest,
# spoken by espeak-ng, written as one Ogg Opus file per voice.
#
# Both files last the whole conversation and are silent while the other voice talks, so that
# played together, sample-aligned, they make the conversation, and each can be fed to the mixer
# as a separate speaker.
#
# Needs: espeak-ng, sox, ffmpeg (Debian packages). Usage: scripts/make-demo-voices.sh [OUTDIR]
# The output is the same bytes on every run with the same tools (sox -R: repeatable dither;
# ffmpeg bitexact: no encoder version or random stream serial in the file).
set -eu

OUT=${1:-"$(dirname "$0")/../src/causerie/media/assets"}
RATE=48000
PAUSE=0.35 # seconds of silence between turns

# speaker: espeak-ng voice, words per minute, pitch (0-99)
HOST_VOICE=en-us+m3 HOST_SPEED=168 HOST_PITCH=42
GUEST_VOICE=en-gb+f3 GUEST_SPEED=176 GUEST_PITCH=58

# The conversation: one "host|..." or "guest|..." line per turn. The text is the project's own.
CONVERSATION='host|Hello, and welcome to the causerie demo space. I am your host, and, in the spirit of full disclosure, I am a synthetic voice.
guest|And I am the guest. Also synthetic, I am afraid. Lovely to be here, though.
host|So, for the listeners who just joined: what is causerie?
guest|It is an open source server for live audio spaces. A few people talk, the server mixes their voices into one programme, and everyone else listens.
host|And how many people can listen?
guest|A great many. The mix is encoded once and served as low latency H L S, so every listener fetches the same small files, and caches do the heavy lifting.
host|How far behind the conversation are the listeners?
guest|About a second behind live. The page even tells you how many seconds behind you are.
host|Do I need a special app to listen?
guest|Not at all. Any H L S player can play it. The web page uses H L S dot J S, Safari plays it natively, and V L C or F F play work too.
host|Now, the two of us are not even real people. How do we get on air?
guest|We are two recordings, fed to the mixer exactly the way a real speaker'"'"'s microphone would be.
host|So if you can hear both of us, the mixer is doing its job.
guest|Exactly. And when we reach the end, we simply start again from the top.
host|Thank you for listening to the causerie demo space. Copy the playlist link and try it in your favourite player.
guest|Bye for now!'

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Silence between turns, in the common format: 48 kHz, mono, 16-bit.
sox -R -n -r "$RATE" -c 1 -b 16 "$WORK/pause.wav" trim 0 "$PAUSE"

n=0
printf '%s\n' "$CONVERSATION" | while IFS='|' read -r who text; do
    n=$((n + 1))
    part=$(printf '%s/%02d' "$WORK" "$n")
    if [ "$who" = host ]; then
        voice=$HOST_VOICE speed=$HOST_SPEED pitch=$HOST_PITCH
    else
        voice=$GUEST_VOICE speed=$GUEST_SPEED pitch=$GUEST_PITCH
    fi
    # espeak-ng says "causerie" as "caw-suh-ree"; spell it out in phonemes: "koh-zuh-ree".
    spoken=$(printf '%s' "$text" | sed "s/causerie/[[k'oUz@ri]]/g")
    espeak-ng -v "$voice" -s "$speed" -p "$pitch" -w "$part-raw.wav" "$spoken"
    sox -R "$part-raw.wav" -r "$RATE" -c 1 -b 16 "$part-voice.wav" gain -n -3
    # The other voice gets silence of exactly the same number of samples.
    sox -R "$part-voice.wav" "$part-quiet.wav" vol 0
    if [ "$who" = host ]; then
        echo "$part-voice.wav $WORK/pause.wav" >>"$WORK/host.list"
        echo "$part-quiet.wav $WORK/pause.wav" >>"$WORK/guest.list"
    else
        echo "$part-quiet.wav $WORK/pause.wav" >>"$WORK/host.list"
        echo "$part-voice.wav $WORK/pause.wav" >>"$WORK/guest.list"
    fi
done

mkdir -p "$OUT"
for who in host guest; do
    # shellcheck disable=SC2046 # the list holds file names without spaces (mktemp's)
    sox -R "$WORK/pause.wav" $(cat "$WORK/$who.list") "$WORK/$who.wav"
    ffmpeg -hide_banner -loglevel error -y -i "$WORK/$who.wav" \
        -c:a libopus -b:a 24k -ac 1 -ar "$RATE" -application voip \
        -map_metadata -1 -fflags +bitexact -flags:a +bitexact \
        "$OUT/demo-$who.opus"
    echo "$OUT/demo-$who.opus: $(soxi -D "$WORK/$who.wav") s, $(wc -c <"$OUT/demo-$who.opus") bytes"
done
