/** Children `h` accepts: nodes, text, and nothing (skipped). */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

type Attributes = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

/**
 * Builds an element. Text is always set as text, never parsed as markup: whatever an agent, a task or
 * an audit entry carries is shown, not run. `on<event>` attributes become listeners; `true` sets a
 * boolean attribute, `false`, `null` and `undefined` leave it out.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (typeof value === 'function') element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (value === true) element.setAttribute(name, '');
    else if (value !== false && value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

/** Builds an SVG element (charts). */
export function svg(tag: string, attributes: Record<string, string | number> = {}, ...children: Child[]): SVGElement {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  append(element, children);
  return element;
}

function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * Replaces a container's content, keeping keyboard focus where it was: an element that had focus
 * and carries `data-key` gets it back in the new content, so live updates never throw a keyboard
 * or screen-reader user out of a table or a form.
 */
export function replaceContent(container: HTMLElement, ...children: Child[]): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && container.contains(active) ? active.dataset.key : undefined;
  const selection =
    active instanceof HTMLInputElement || active instanceof HTMLTextAreaElement
      ? [active.selectionStart, active.selectionEnd]
      : undefined;
  const fragment = document.createDocumentFragment();
  append(fragment, children);
  container.replaceChildren(fragment);
  if (key === undefined) return;
  const again = container.querySelector<HTMLElement>(`[data-key="${CSS.escape(key)}"]`);
  if (!again) return;
  again.focus({ preventScroll: true });
  if (selection && (again instanceof HTMLInputElement || again instanceof HTMLTextAreaElement)) {
    again.setSelectionRange(selection[0] ?? null, selection[1] ?? null);
  }
}

/** A table with a caption and a header row; `empty` when there are no rows. */
export function table(
  caption: string,
  headers: readonly (string | { text: string; num: true })[],
  rows: readonly HTMLTableRowElement[],
  empty: string,
): HTMLElement {
  if (rows.length === 0) return h('div', {}, h('h3', {}, caption), h('p', { class: 'empty' }, empty));
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((header) =>
          typeof header === 'string'
            ? h('th', { scope: 'col' }, header)
            : h('th', { scope: 'col', class: 'num' }, header.text),
        ),
      ),
    ),
    h('tbody', {}, rows),
  );
}
