// In-page half of the toolgym web driver: element ids, the text observation,
// and the DOM side of actions.  Evaluated (once per document) by webdriver.py;
// the agent never runs JavaScript, it only names element ids.
//
// Ids: every interactive element gets the next number the first time a
// snapshot sees it, in document order, hidden ones included.  A page that
// builds its widgets at load therefore numbers them exactly by DOM order, and
// an element keeps its number for the life of the document.
if (!window.__tgd) window.__tgd = (function () {
  const ids = new WeakMap();
  const byId = new Map();
  let next = 1;
  const INTERACTIVE = 'a[href], button, input:not([type=hidden]), select, textarea, ' +
    '[role=button], [role=tab], [role=link], [role=checkbox], [role=option]';
  const TEXTLIKE = new Set(['text', 'password', 'email', 'search', 'tel', 'url', '']);
  const VALUED = new Set(['range', 'number', 'date', 'time', 'month', 'week', 'color',
    'datetime-local']);
  const SKIP = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'HEAD', 'TITLE']);

  function assign() {
    for (const el of document.querySelectorAll(INTERACTIVE)) {
      if (!ids.has(el)) { ids.set(el, next); byId.set(next, el); next += 1; }
    }
  }

  function shown(el) {
    if (!el.isConnected || !el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) {
      return false;
    }
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  }

  // -1 above the viewport, 1 below (or beside), 0 inside: by the element's centre.
  function where(rect) {
    const cx = rect.left + rect.width / 2, cy = rect.top + rect.height / 2;
    if (cy < 0) return -1;
    if (cy > innerHeight || cx < 0 || cx > innerWidth) return 1;
    return 0;
  }

  function clean(text, max) {
    const t = (text || '').replace(/\s+/g, ' ').trim();
    return t.length > max ? t.slice(0, max - 1) + '…' : t;
  }

  function kind(el) {
    const tag = el.tagName;
    if (tag === 'A' || el.getAttribute('role') === 'link') return 'link';
    if (tag === 'SELECT') return 'combobox';
    if (tag === 'TEXTAREA') return 'textbox';
    if (tag === 'INPUT') {
      const t = (el.getAttribute('type') || '').toLowerCase();
      if (TEXTLIKE.has(t)) return 'textbox';
      if (t === 'checkbox' || t === 'radio') return t;
      if (t === 'range') return 'slider';
      if (t === 'number') return 'spinbutton';
      if (t === 'button' || t === 'submit' || t === 'reset') return 'button';
      return t;
    }
    const role = el.getAttribute('role');
    return role || 'button';
  }

  function name(el) {
    const aria = el.getAttribute('aria-label');
    if (aria) return aria;
    if (el.labels && el.labels.length) {
      return Array.from(el.labels).map((l) => labelText(l, el)).join(' ');
    }
    const k = kind(el);
    if (el.tagName === 'INPUT' && k === 'button') return el.value;
    if (k === 'button' || k === 'link' || k === 'tab' || k === 'option') return el.innerText;
    return el.getAttribute('placeholder') || el.getAttribute('title') || el.name || '';
  }

  // A label's text without the text of controls nested in it.
  function labelText(label, control) {
    let out = '';
    const walk = (n) => {
      for (const c of n.childNodes) {
        if (c.nodeType === 3) out += c.textContent;
        else if (c.nodeType === 1 && c !== control && !c.matches(INTERACTIVE)) walk(c);
      }
    };
    walk(label);
    return out;
  }

  function describe(el) {
    const k = kind(el);
    let line = `[${ids.get(el)}] ${k} "${clean(name(el), 80)}"`;
    if (k === 'textbox' || k === 'spinbutton' || VALUED.has(el.type)) {
      const v = el.type === 'password' ? '•'.repeat(el.value.length) : el.value;
      line += ` value="${clean(v, 120)}"`;
    }
    if (k === 'slider' || k === 'spinbutton') {
      const lim = [];
      if (el.min !== '') lim.push(`min ${el.min}`);
      if (el.max !== '') lim.push(`max ${el.max}`);
      if (lim.length) line += ` (${lim.join(', ')})`;
    }
    if (k === 'combobox') {
      const sel = el.selectedOptions[0];
      line += ` value="${sel ? clean(sel.text, 60) : ''}" options: ` +
        Array.from(el.options).map((o) => clean(o.text, 40)).join(' | ');
    }
    if (k === 'checkbox' || k === 'radio') line += el.checked ? ' (checked)' : ' (unchecked)';
    if (el.getAttribute('aria-selected') === 'true') line += ' (selected)';
    if (el.getAttribute('aria-expanded') !== null) {
      line += el.getAttribute('aria-expanded') === 'true' ? ' (expanded)' : ' (collapsed)';
    }
    if (el.disabled) line += ' (disabled)';
    if (document.activeElement === el) line += ' (focused)';
    return line;
  }

  function snapshot() {
    assign();
    const lines = [];
    let above = 0, below = 0, buf = '', bufPos = null;
    const flush = () => {
      const t = clean(buf, 300);
      if (t && bufPos === 0) lines.push(t);
      buf = ''; bufPos = null;
    };
    const range = document.createRange();
    const walk = (node, quiet) => {
      for (const c of node.childNodes) {
        if (c.nodeType === 3) {
          if (quiet || !c.textContent.trim()) continue;
          if (!c.parentElement.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
          range.selectNodeContents(c);
          const r = range.getBoundingClientRect();
          if (r.width === 0 && r.height === 0) continue;
          const pos = where(r);
          if (bufPos !== null && pos !== bufPos) flush();
          buf += c.textContent; bufPos = pos;
          continue;
        }
        if (c.nodeType !== 1 || SKIP.has(c.tagName)) continue;
        if (c.matches(INTERACTIVE)) {
          flush();
          if (!shown(c)) continue;
          const pos = where(c.getBoundingClientRect());
          if (pos === 0) lines.push(describe(c));
          else if (pos < 0) above += 1;
          else below += 1;
          continue;
        }
        const style = getComputedStyle(c);
        if (style.display === 'none') continue;
        const block = !style.display.startsWith('inline');
        if (block) flush();
        const isLabel = c.tagName === 'LABEL' && c.control && c.control.matches(INTERACTIVE);
        walk(c, quiet || isLabel);
        if (block) flush();
      }
    };
    if (document.body) walk(document.body, false);
    flush();
    const path = decodeURIComponent(location.pathname.split('/').pop() || '');
    const head = [`Page: /${path}${location.hash}`];
    if (document.title) head.push(`Title: ${clean(document.title, 100)}`);
    const tail = [];
    if (above || below) {
      tail.push(`(${above} interactive element(s) above and ${below} below the visible ` +
        'area: use scroll to see them)');
    }
    return [...head, '', ...lines, ...tail].join('\n');
  }

  // The element an action targets, checked the way a user would find it.
  function find(id) {
    assign();
    const el = byId.get(id);
    if (!el || !el.isConnected) {
      return { error: `There is no element [${id}] on this page; use an id from the latest observation.` };
    }
    if (!shown(el)) return { error: `Element [${id}] is not visible.` };
    const r = el.getBoundingClientRect();
    const pos = where(r);
    if (pos !== 0) {
      return { error: `Element [${id}] is off screen; scroll ${pos < 0 ? 'up' : 'down'} to it first.` };
    }
    return { el, x: r.left + r.width / 2, y: r.top + r.height / 2, kind: kind(el) };
  }

  function locate(id) {
    const f = find(id);
    if (f.error) return f;
    if (f.kind === 'combobox') {
      return { error: `Element [${id}] is a dropdown: choose an option with type(${id}, "option text").` };
    }
    return { x: f.x, y: f.y, kind: f.kind };
  }

  function fire(el) {
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }

  // Prepare typing: text fields are focused with their content selected (the
  // driver then types over it); other fields are set here.
  function prepareType(id, text) {
    const f = find(id);
    if (f.error) return f;
    const el = f.el;
    if (el.disabled || el.readOnly) return { error: `Element [${id}] cannot be edited.` };
    if (f.kind === 'textbox') {
      el.focus();
      if (typeof el.select === 'function') el.select();
      if (text === '') { el.value = ''; fire(el); }
      return { typed: text !== '' };
    }
    if (f.kind === 'combobox') {
      const want = clean(text, 1000).toLowerCase();
      const opt = Array.from(el.options).find((o) => clean(o.text, 1000).toLowerCase() === want) ||
        Array.from(el.options).find((o) => o.value.toLowerCase() === want);
      if (!opt) {
        return { error: `No option "${clean(text, 60)}" in [${id}]; options: ` +
          Array.from(el.options).map((o) => clean(o.text, 40)).join(' | ') };
      }
      el.focus();
      el.value = opt.value;
      fire(el);
      return { typed: false };
    }
    if (VALUED.has(el.type)) {
      if ((el.type === 'range' || el.type === 'number') && !/^-?\d+(\.\d+)?$/.test(text.trim())) {
        return { error: `Element [${id}] takes a number, not "${clean(text, 40)}".` };
      }
      el.focus();
      el.value = text.trim();
      if (el.value === '' && text.trim() !== '') {
        return { error: `"${clean(text, 40)}" is not a valid value for [${id}].` };
      }
      fire(el);
      return { typed: false };
    }
    return { error: `Element [${id}] is a ${f.kind}, not a text field; use click(${id}).` };
  }

  function scroll(direction) {
    const step = 500;
    if (direction === 'down') window.scrollBy(0, step);
    else if (direction === 'up') window.scrollBy(0, -step);
    else if (direction === 'top') window.scrollTo(0, 0);
    else if (direction === 'bottom') window.scrollTo(0, document.documentElement.scrollHeight);
    else return { error: `Unknown direction "${clean(direction, 20)}"; use up, down, top or bottom.` };
    return {};
  }

  return { snapshot, locate, prepareType, scroll };
})();
