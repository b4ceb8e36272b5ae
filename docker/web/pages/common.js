// Shared part of every toolgym web task page.
//
// A page's parameters come from its URL: ?p=<JSON>, written by the task
// generator on the host (toolgym/envs/web/kinds.py).  Each page sets
// TG.check, a function of the page's *current DOM* (and of what the page's
// own event handlers recorded, e.g. that Submit was clicked), and the driver
// reads window.__toolgym_result() when the episode ends.  Nothing the agent
// types is evaluated; it can only change the DOM through input events.
'use strict';
const TG = (function () {
  let params = null;
  try { params = JSON.parse(new URLSearchParams(location.search).get('p')); } catch (e) { }
  const tg = { params, check: () => false, state: () => ({}) };
  tg.el = function (tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  tg.same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  // Clicks on elements, in order, as the page's own handlers saw them.
  tg.clicks = [];
  tg.track = function (el, key) {
    el.addEventListener('click', (ev) => { ev.preventDefault(); tg.clicks.push(key); });
  };
  // Record a form's submissions: the state read from the DOM each time.
  tg.submissions = [];
  tg.onSubmit = function (form, read) {
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      tg.submissions.push(read());
      const note = document.getElementById('status');
      if (note) note.textContent = 'Submitted.';
    });
  };
  // Success iff the form was submitted and the last submission and the DOM
  // now both equal the wanted state.
  tg.submittedAs = function (read, want) {
    const last = tg.submissions[tg.submissions.length - 1];
    return last !== undefined && tg.same(last, want) && tg.same(read(), want);
  };
  return tg;
})();
window.__toolgym_result = function () {
  try {
    return { success: TG.params !== null && TG.check() === true, state: TG.state() };
  } catch (e) {
    return { success: false, error: String(e) };
  }
};
