import { createHash } from 'node:crypto';

/**
 * The status page's only script, a constant: it never builds markup from data. Typing in the filter
 * form, or the refresh timer, fetches the page for the form's (or the current) query and puts the new
 * page's <main> in place of the old one, so the filter form keeps its focus and what is being typed (a
 * meta refresh would reload the page under the operator's fingers). The fetched page is rendered and
 * escaped by the server like any other; without JavaScript the form submits and the meta refresh in
 * <noscript> reloads, with the same result. Allowed by its hash in the page's Content-Security-Policy,
 * which admits no other script, inline handler or origin.
 */
export const STATUS_SCRIPT = `(function () {
  'use strict';
  var form = document.querySelector('form.filter');
  var refreshMs = Number(document.body.getAttribute('data-refresh')) * 1000;
  if (!form || !window.fetch || !window.DOMParser || !window.URLSearchParams) return;
  var seq = 0;
  var typing = 0;
  function here() { return location.pathname + location.search; }
  function formUrl() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { if (v !== '') params.append(k, String(v)); });
    var q = params.toString();
    return location.pathname + (q ? '?' + q : '');
  }
  function update(url) {
    var n = ++seq;
    document.body.setAttribute('aria-busy', 'true');
    return fetch(url, { headers: { accept: 'text/html' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (html === null || n !== seq) return;
        var next = new DOMParser().parseFromString(html, 'text/html').querySelector('main');
        var cur = document.querySelector('main');
        if (!next || !cur) return;
        cur.replaceWith(document.adoptNode(next));
        if (url !== here()) history.replaceState(null, '', url);
      })
      .catch(function () {})
      .then(function () { if (n === seq) document.body.removeAttribute('aria-busy'); });
  }
  function filterSoon(delay) {
    clearTimeout(typing);
    typing = setTimeout(function () { typing = 0; update(formUrl()); }, delay);
  }
  form.addEventListener('input', function () { filterSoon(120); });
  form.addEventListener('submit', function (e) { e.preventDefault(); filterSoon(0); });
  if (refreshMs > 0) setInterval(function () { if (!document.hidden && !typing) update(here()); }, refreshMs);
})();`;

/** The CSP source that allows STATUS_SCRIPT and nothing else. */
export const STATUS_SCRIPT_SOURCE = `'sha256-${createHash('sha256').update(STATUS_SCRIPT).digest('base64')}'`;
