"""The browser preview page of :mod:`.mjpeg`: the stream and its control panel.

Kept apart from the server: it is one HTML/CSS/JS document, served as it is.
"""

from __future__ import annotations

#: The preview page: the stream and a control panel (blend slider between two styles,
#: strength, the stylized region (all / background / person, issue 18), smoothing,
#: snapshot, then the style list, which grows with the styles installed; the current
#: blend and scale on top). Plain inline JS and
#: CSS, nothing fetched from elsewhere. ``@AUTH@``/``@AUTH_AND@`` carry the token for
#: clients without cookies (it is URL-safe by construction); ``@HIDDEN@`` hides the panel
#: when the server has no controls. The page posts to ``control`` and polls ``state``.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>stylize-video preview</title>
<style>
:root{color-scheme:dark}
*{box-sizing:border-box}
body{margin:0;background:#111;color:#ddd;font:14px/1.4 system-ui,sans-serif;display:flex;min-height:100vh}
#view{flex:1;display:flex;align-items:center;justify-content:center;min-width:0;padding:8px}
#stream{display:block;max-width:100%;max-height:calc(100vh - 16px);background:#000}
#panel{width:290px;flex:none;background:#1a1a1a;border-left:1px solid #2b2b2b;padding:12px 14px;overflow-y:auto;max-height:100vh}
#panel[hidden]{display:none}
h1{font-size:15px;font-weight:600;margin:0 0 6px}
h2{font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.08em;color:#8a8a8a;margin:16px 0 6px}
#styles{display:flex;flex-wrap:wrap;gap:4px}
button{background:#262626;color:#ddd;border:1px solid #3a3a3a;border-radius:4px;padding:3px 8px;font:inherit;cursor:pointer}
button:hover{background:#303030}
button.on{background:#24507a;border-color:#3b74ab;color:#fff}
.row{display:flex;align-items:center;gap:8px;margin:5px 0}
.row input[type=range]{flex:1;min-width:0}
select{flex:1;min-width:0;background:#222;color:#ddd;border:1px solid #3a3a3a;border-radius:4px;padding:3px}
output{min-width:3.2em;text-align:right;font-variant-numeric:tabular-nums;color:#bbb}
.ends{display:flex;justify-content:space-between;font-size:11px;color:#777;margin-top:-3px}
#info{color:#9a9a9a;font-size:12px}
#info span{color:#e6e6e6}
#err{color:#ff8080;font-size:12px;min-height:1.4em;margin-top:6px}
#styles button{font-size:13px;padding:2px 7px}
#regions{display:flex;gap:4px}
#regions button{flex:1}
@media (max-width:720px){body{flex-direction:column}#panel{width:auto;border-left:0;border-top:1px solid #2b2b2b;max-height:none}}
</style></head>
<body>
<div id="view"><img id="stream" src="stream.mjpg@AUTH@" alt="stylized stream"></div>
<div id="panel" @HIDDEN@>
<h1>stylize-video</h1>
<div id="info">now <span id="now">&hellip;</span><br>scale <span id="scale">&ndash;</span> &middot; morph <span id="morph">&ndash;</span></div>
<h2>Blend</h2>
<div class="row"><select id="ba" aria-label="blend from"></select><select id="bb" aria-label="blend to"></select></div>
<div class="row"><input id="bw" type="range" min="0" max="1" step="0.05" value="0" aria-label="blend weight"><output id="bwv">0%</output></div>
<div class="ends"><span id="bal"></span><span id="bbl"></span></div>
<h2>Strength</h2>
<div class="row"><input id="strength" type="range" min="0" max="1" step="0.05" value="1" aria-label="strength"><output id="sv">100%</output></div>
<h2>Region</h2>
<div class="row" id="regions" role="group" aria-label="stylized region"><button data-region="all" title="stylize the whole frame">all</button><button data-region="background" title="paint the room, keep the person">background</button><button data-region="person" title="paint the person, keep the room">person</button></div>
<h2>Output</h2>
<div class="row"><label><input id="smooth" type="checkbox"> temporal smoothing</label></div>
<div class="row"><button id="snap">snapshot</button><span id="snaps"></span></div>
<div id="err" role="status"></div>
<h2>Style</h2>
<div id="styles"></div>
</div>
<script>
"use strict";
const CONTROL = "control?@AUTH_AND@", STATE = "state@AUTH@", STREAM = "stream.mjpg@AUTH@";
const $ = (id) => document.getElementById(id);
const hold = {blend: 0, strength: 0, smooth: 0, region: 0};  // a control the user just moved is not reset by polls meanwhile
const pct = (w) => Math.round(w * 100) + "%";
let sent = 0, failedAt = 0;  // a reply may only clear an error shown before its request left
let notices = null;  // the pipeline's notice count when last seen (null: not yet; older notices are not shown)
function show(text) { $("err").textContent = text || ""; }
function fail(text) { failedAt = ++sent; show(text); }
function post(params) {
  const mine = ++sent;
  return fetch(CONTROL + new URLSearchParams(params), {method: "POST"})
    .then((r) => r.json().then((j) => { if (!r.ok) throw new Error(j.error || r.statusText); return j; }))
    .then((j) => { if (mine > failedAt) show(""); render(j.state); })
    .catch((e) => fail(e.message || String(e)));
}
function fill(select, names) {
  const key = names.join("\\n");
  if (select.dataset.key === key) return;
  const keep = select.value;
  select.textContent = "";
  for (const n of names) select.add(new Option(n, n));
  select.dataset.key = key;
  if (names.includes(keep)) select.value = keep;
}
function render(s) {
  if (!s || !Array.isArray(s.styles)) return;
  if (typeof s.notices === "number" && s.notices !== notices) {
    if (notices !== null && s.notice) fail(s.notice);  // a control the pipeline could not apply, and why
    notices = s.notices;
  }
  const box = $("styles"), key = s.styles.join("\\n");
  if (box.dataset.key !== key) {
    box.textContent = "";
    for (const n of s.styles) {
      const b = document.createElement("button");
      b.textContent = n;
      b.dataset.name = n;
      b.onclick = () => post({style: n});
      box.appendChild(b);
    }
    box.dataset.key = key;
  }
  for (const b of box.children) b.classList.toggle("on", b.dataset.name === s.style);
  const names = s.styles.filter((n) => !/[+=]/.test(n));
  fill($("ba"), names);
  fill($("bb"), names);
  const pair = Array.isArray(s.blend) && s.blend.length ? s.blend : [[s.style, 1]];
  if (Date.now() > hold.blend) {
    if (pair.length === 2) {
      $("ba").value = pair[0][0];
      $("bb").value = pair[1][0];
      $("bw").value = pair[1][1];
    } else {
      $("ba").value = pair[0][0];
      if (!$("bb").value || $("bb").value === pair[0][0]) $("bb").value = names.find((n) => n !== pair[0][0]) || "";
      $("bw").value = 0;
    }
  }
  labels();
  if (Date.now() > hold.strength) $("strength").value = s.strength;
  $("sv").textContent = pct($("strength").value);
  if (Date.now() > hold.smooth) $("smooth").checked = !!s.smoothing;
  if (Date.now() > hold.region) markRegion(s.region || "all");
  $("snaps").textContent = s.snapshots ? s.snapshots + " saved" : "";
  $("now").textContent = pair.filter((p) => p[1] > 0).map((p) => p[0] + (p[1] < 1 ? " " + pct(p[1]) : "")).join(" + ");
  $("scale").textContent = typeof s.scale === "number" ? s.scale.toFixed(2) : "1.00";
  $("morph").textContent = typeof s.morph === "number" ? (s.morph > 0 ? s.morph + " s" : "cut") : "\\u2013";
}
function markRegion(region) {
  for (const b of $("regions").children) b.classList.toggle("on", b.dataset.region === region);
}
function labels() {
  $("bwv").textContent = pct($("bw").value);
  $("bal").textContent = $("ba").value;
  $("bbl").textContent = $("bb").value;
}
function sendBlend() {
  const a = $("ba").value, b = $("bb").value, w = Number($("bw").value);
  hold.blend = Date.now() + 1500;
  if (!a || !b) return Promise.resolve();
  if (a === b) { fail("pick two different styles to blend"); return Promise.resolve(); }
  return post({blend: a + "=" + (1 - w).toFixed(2) + "+" + b + "=" + w.toFixed(2)});
}
let blendTimer = 0;
$("bw").addEventListener("input", () => {
  hold.blend = Date.now() + 1500;
  labels();
  if (!blendTimer) blendTimer = setTimeout(() => { blendTimer = 0; sendBlend(); }, 120);  // at most ~8 posts/s while dragging
});
$("bw").addEventListener("change", () => { clearTimeout(blendTimer); blendTimer = 0; sendBlend(); });
$("ba").addEventListener("change", () => { labels(); sendBlend(); });
$("bb").addEventListener("change", () => { labels(); sendBlend(); });
$("strength").addEventListener("input", () => { hold.strength = Date.now() + 1500; $("sv").textContent = pct($("strength").value); });
$("strength").addEventListener("change", () => { hold.strength = Date.now() + 1500; post({strength: $("strength").value}); });
$("smooth").addEventListener("change", () => {
  hold.smooth = Date.now() + 1500;  // the pipeline applies it on its next frame; until then polls show the old state
  post({smooth: $("smooth").checked ? "on" : "off"});
});
$("snap").addEventListener("click", () => post({snapshot: "1"}));
for (const b of $("regions").children) {
  b.addEventListener("click", () => {
    hold.region = Date.now() + 1500;  // applied on the next frame (the mask model may load first); polls wait
    markRegion(b.dataset.region);
    post({region: b.dataset.region});
  });
}
function poll() {
  fetch(STATE).then((r) => (r.ok ? r.json() : null)).then(render).catch(() => {});
}
if (!$("panel").hidden) { poll(); setInterval(poll, 1000); }
const img = $("stream");
// The stream ends when the run does, or breaks on a network hiccup: reconnect.
img.addEventListener("error", () => setTimeout(() => { img.src = STREAM + (STREAM.includes("?") ? "&" : "?") + "r=" + Date.now(); }, 2000));
</script>
</body></html>
"""
