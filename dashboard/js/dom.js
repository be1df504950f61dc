// The only way this dashboard builds DOM: elements from createElement,
// text from text nodes. Alert fields come from attackers (payload excerpts
// hold markup on purpose), so nothing here ever parses a string as HTML.

/**
 * An element `tag` with `attrs` (`class` sets the class name, other names
 * become attributes; null/false values are skipped) and `children` (nodes,
 * or anything else appended as text).
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

/** Appends nodes as they are and anything else as text; skips null/false. */
function append(node, children) {
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces all of `node`'s children. */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** Adds `class` to `node` for the length of its CSS animation. */
export function flash(node, className = 'flash') {
  node.classList.remove(className);
  // Reading layout restarts the animation when the class is added again.
  void node.offsetWidth;
  node.classList.add(className);
  node.addEventListener('animationend', () => node.classList.remove(className), { once: true });
}

export const byId = (id) => document.getElementById(id);
