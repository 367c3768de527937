// A DOM (happy-dom) installed as globals before anything that reads them at load time (Vue's DOM
// renderer keeps `document` when it loads): import this module first.
// (Untyped import: happy-dom's declarations need newer Node types than the tests use.)
const happyDom = 'happy-dom';
const { Window } = (await import(happyDom)) as { Window: new (o: { url: string }) => HappyWindow };

export interface HappyWindow {
  document: Document;
  happyDOM: { abort(): Promise<void>; close(): Promise<void> };
}

export const win = new Window({ url: 'http://localhost/' });
const names = ['window', 'document', 'navigator', 'Node', 'Element', 'HTMLElement', 'SVGElement', 'Text', 'Comment'];
for (const k of [...names, 'HTMLTemplateElement', 'DocumentFragment', 'Event', 'MouseEvent'])
  Object.defineProperty(globalThis, k, {
    value: k == 'window' ? win : (win as unknown as Record<string, unknown>)[k],
    configurable: true,
    writable: true,
  });
