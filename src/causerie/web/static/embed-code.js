// The embed code of a space: the same <iframe> of /embed/{id} the server's oEmbed answers with
// (node/oembed.py), made in the page for its "Copy embed code" button.

export const EMBED_WIDTH = 480;
export const EMBED_HEIGHT = 200;

/** Text made safe for a double-quoted HTML attribute value. */
export function attribute(text) {
  return String(text)
    .replaceAll("&", "&amp;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#x27;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;");
}

/** The <iframe> that embeds the player of space `id`, served from `origin`. */
export function embedCode(origin, id, title) {
  const src = `${origin}/embed/${encodeURIComponent(id)}`;
  return (
    `<iframe src="${attribute(src)}" width="${EMBED_WIDTH}" height="${EMBED_HEIGHT}" ` +
    `frameborder="0" title="${attribute(`${title} · live audio`)}"></iframe>`
  );
}
