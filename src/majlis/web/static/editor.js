// The editor of `majlis serve --edit` on the episode page: fix a word (click it; Enter saves, Esc cancels),
// give selected words to another speaker, split and merge segments, rename a speaker (click the name), undo.
// Each change is one POST to /api/edit/<episode> with the version the page was made from; the server saves
// the transcript, its exports and the index as one change, and the page reloads to show it.
// Everything is put in the page with textContent, never innerHTML.
"use strict";

(function () {
  const state = JSON.parse(document.getElementById("majlis-state").textContent || "{}");
  const edit = state.edit;
  const transcript = document.getElementById("transcript");
  if (!edit || !transcript) return;
  const TOKEN_KEY = "majlis-edit-token";
  const OFFER_KEY = "majlis-learn-offer";
  let busy = false;
  let selected = null;  // {start: [seg, word], end: [seg, word], count}

  function token() { try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; } }

  function el(tag, props, text) {
    const e = document.createElement(tag);
    Object.entries(props || {}).forEach(([k, v]) => { if (k.includes("-")) e.setAttribute(k, v); else e[k] = v; });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // -- the bar -------------------------------------------------------------------------------------------
  const bar = el("div", { className: "edit-bar", id: "edit-bar" });
  const onLabel = el("label");
  const on = el("input", { type: "checkbox", id: "edit-on", checked: true });
  onLabel.append(on, " Edit");
  const undo = el("button", { type: "button", className: "button small", id: "edit-undo",
                              disabled: !edit.undo, title: edit.undo ? "Undo: " + edit.undo : "Nothing to undo" },
                  edit.undo ? "Undo " + edit.undo : "Undo");
  const speakerMenu = el("select", { id: "edit-speaker", "aria-label": "Speaker for the selected words" });
  const names = Array.from(new Set([].concat(edit.speakers || [], edit.names || [])));
  names.forEach((n) => speakerMenu.append(el("option", { value: n }, n)));
  speakerMenu.append(el("option", { value: "\u0000new" }, "New name…"));
  const give = el("button", { type: "button", className: "button small", id: "edit-give", disabled: true },
                  "Give selected words");
  const status = el("span", { className: "edit-status", id: "edit-status", role: "status" },
                    "Click a word to fix it; select words to give them to another speaker; click a name to rename.");
  const tokenBox = el("span", { id: "edit-token-box", hidden: !!token() });
  const tokenInput = el("input", { type: "password", id: "edit-token", placeholder: "edit token",
                                   autocomplete: "off", size: 18 });
  const tokenSave = el("button", { type: "button", className: "button small", id: "edit-token-save" }, "Use token");
  tokenBox.append(tokenInput, tokenSave);
  bar.append(onLabel, undo, give, speakerMenu, tokenBox, status);
  const head = document.querySelector(".episode-head");
  head.after(bar);

  function say(text, bad) {
    status.textContent = text;
    status.classList.toggle("bad", !!bad);
  }

  function setEditing(yes) { document.body.classList.toggle("editing", yes); }
  setEditing(true);
  on.addEventListener("change", () => setEditing(on.checked));

  tokenSave.addEventListener("click", () => {
    try { localStorage.setItem(TOKEN_KEY, tokenInput.value.trim()); } catch (e) { /* private mode */ }
    tokenBox.hidden = !!token();
    say(token() ? "Token kept for this browser." : "No token given.", !token());
  });

  // -- saving --------------------------------------------------------------------------------------------
  async function send(op) {
    if (busy) return;
    if (!token()) {
      tokenBox.hidden = false;
      say("Editing needs the edit token printed by majlis serve --edit: open the link it printed, or paste it here.", true);
      return;
    }
    busy = true;
    say("Saving…");
    let response, body = {};
    try {
      response = await fetch("/api/edit/" + encodeURIComponent(state.episode), {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Majlis-Edit-Token": token() },
        body: JSON.stringify(Object.assign({ version: edit.version }, op)),
      });
      body = await response.json().catch(() => ({}));
    } catch (e) {
      busy = false;
      say("Not saved: the server cannot be reached.", true);
      return;
    }
    if (response.ok) {
      say("Saved.");
      if (body.offer && body.offer.learn) {
        try { sessionStorage.setItem(OFFER_KEY, JSON.stringify({ episode: state.episode, speaker: body.offer.learn })); }
        catch (e) { /* private mode: no offer after the reload */ }
      }
      location.reload();
      return;
    }
    busy = false;
    const why = body.error || ("HTTP " + response.status);
    if (response.status === 403) {
      tokenBox.hidden = false;
      say("Not saved: " + why, true);
    } else if (response.status === 409) {
      say("Not saved: " + why, true);
      const again = el("button", { type: "button", className: "button small", id: "edit-reload" }, "Reload");
      again.addEventListener("click", () => location.reload());
      status.append(" ", again);
    } else {
      say("Not saved: " + why, true);
    }
  }

  // -- learning a newly named voice into the library (offered once, after the save that named it) --------
  function takeOffer() {
    let offer = null;
    try {
      offer = JSON.parse(sessionStorage.getItem(OFFER_KEY) || "null");
      sessionStorage.removeItem(OFFER_KEY);
    } catch (e) { return null; }
    return offer && offer.episode === state.episode && typeof offer.speaker === "string" ? offer : null;
  }

  async function learn(speaker, box) {
    box.textContent = "Learning " + speaker + "'s voice…";
    let response, body = {};
    try {
      response = await fetch("/api/edit/" + encodeURIComponent(state.episode) + "/learn", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Majlis-Edit-Token": token() },
        body: JSON.stringify({ speaker: speaker }),
      });
      body = await response.json().catch(() => ({}));
    } catch (e) {
      box.textContent = "Not learned: the server cannot be reached.";
      box.classList.add("bad");
      return;
    }
    if (response.ok) {
      box.textContent = "Learned " + body.learned + "'s voice (" + body.seconds + " s) into the voice library " +
        "(version " + body.version + "): later episodes name them unaided.";
    } else {
      box.textContent = body.error || ("Not learned: HTTP " + response.status);
      box.classList.add("bad");
    }
  }

  const offer = takeOffer();
  if (offer) {
    const box = el("span", { className: "edit-offer", id: "edit-offer" },
                   "Learn " + offer.speaker + "'s voice into the voice library? ");
    const yes = el("button", { type: "button", className: "button small", id: "edit-learn" }, "Learn voice");
    const no = el("button", { type: "button", className: "button small", id: "edit-learn-no" }, "No");
    yes.addEventListener("click", () => learn(offer.speaker, box));
    no.addEventListener("click", () => box.remove());
    box.append(yes, " ", no);
    bar.append(box);
  }

  function segIndex(node) {
    const seg = node.closest(".seg");
    return seg ? parseInt(seg.id.slice(4), 10) : -1;
  }

  // -- fixing a word, splitting before it ----------------------------------------------------------------
  let open = null;  // the word being edited: {span, input, tools}

  function closeWord() {
    if (!open) return;
    open.input.remove();
    open.tools.remove();
    open.span.hidden = false;
    open = null;
  }

  function openWord(span) {
    closeWord();
    const seg = segIndex(span), word = parseInt(span.dataset.i, 10);
    const input = el("input", { className: "w-edit", value: span.textContent, "aria-label": "Word text" });
    input.size = Math.max(4, span.textContent.length + 2);
    const tools = el("span", { className: "w-tools" });
    if (word > 0) {
      const cut = el("button", { type: "button", className: "button small", title: "Start a new segment here" },
                     "Split here");
      cut.addEventListener("mousedown", (e) => e.preventDefault());
      cut.addEventListener("click", () => send({ op: "split", seg: seg, word: word }));
      tools.append(cut);
    }
    [input, tools].forEach((x) => x.addEventListener("click", (e) => e.stopPropagation()));  // no seeking
    span.hidden = true;
    span.after(input, tools);
    open = { span: span, input: input, tools: tools };
    input.focus();
    input.select();
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        if (input.value.trim() === span.textContent.trim()) { closeWord(); return; }
        send({ op: "fix_word", seg: seg, word: word, text: input.value });
      } else if (e.key === "Escape") {
        e.preventDefault();
        closeWord();
      }
      e.stopPropagation();  // no play/pause on space while typing
    });
    input.addEventListener("blur", () => setTimeout(() => { if (open && open.input === input && !busy) closeWord(); }, 150));
  }

  // -- renaming a speaker --------------------------------------------------------------------------------
  function openRename(who) {
    closeWord();
    const old = who.textContent.trim();
    const input = el("input", { className: "who-edit", value: old, "aria-label": "Rename " + old + " everywhere" });
    input.addEventListener("click", (e) => e.stopPropagation());
    who.hidden = true;
    who.after(input);
    input.focus();
    input.select();
    const done = () => { input.remove(); who.hidden = false; };
    input.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Enter") {
        e.preventDefault();
        const name = input.value.trim();
        if (!name || name === old) { done(); return; }
        send({ op: "rename_speaker", old: old, new: name });
      } else if (e.key === "Escape") {
        e.preventDefault();
        done();
      }
    });
    input.addEventListener("blur", () => setTimeout(() => { if (!busy) done(); }, 150));
  }

  // Clicks on words and names edit instead of seeking (captured before majlis.js sees them).
  document.addEventListener("click", (e) => {
    if (!document.body.classList.contains("editing") || !transcript.contains(e.target)) return;
    if (e.target.closest(".w-edit, .who-edit, .w-tools, .seg-tools")) return;  // they stop it themselves
    if (String(window.getSelection())) return;
    const word = e.target.closest(".w");
    const who = e.target.closest(".seg-head .who");
    if (!word && !who) return;
    e.preventDefault();
    e.stopPropagation();
    if (word) openWord(word); else openRename(who);
  }, true);

  // -- merging -------------------------------------------------------------------------------------------
  const segs = Array.from(transcript.querySelectorAll(".seg"));
  segs.forEach((seg, i) => {
    const name = (x) => x.querySelector(".seg-head .who").textContent.trim();
    if (i === segs.length - 1 || name(seg) !== name(segs[i + 1])) return;  // only one speaker's segments merge
    const tools = el("span", { className: "seg-tools" });
    const join = el("button", { type: "button", className: "button small merge", title: "Merge with the next segment" },
                    "Merge with next");
    join.addEventListener("click", () => send({ op: "merge", seg: i }));
    tools.append(join);
    tools.addEventListener("click", (e) => e.stopPropagation());  // no seeking
    seg.querySelector(".seg-head").append(tools);
  });

  // -- giving words to another speaker -------------------------------------------------------------------
  document.addEventListener("selectionchange", () => {
    const sel = window.getSelection();
    if (!sel || sel.isCollapsed || !sel.rangeCount) return;  // keep the last one while the menu is used
    const words = Array.from(transcript.querySelectorAll(".w")).filter((w) => sel.containsNode(w, true));
    if (!words.length) { selected = null; give.disabled = true; return; }
    const first = words[0], last = words[words.length - 1];
    selected = { start: [segIndex(first), parseInt(first.dataset.i, 10)],
                 end: [segIndex(last), parseInt(last.dataset.i, 10)], count: words.length };
    give.disabled = false;
    give.textContent = "Give " + words.length + " word" + (words.length === 1 ? "" : "s") + " to";
  });

  give.addEventListener("click", () => {
    if (!selected) return;
    let speaker = speakerMenu.value;
    if (speaker === "\u0000new") {
      speaker = (window.prompt("Give the words to (a new name):") || "").trim();
      if (!speaker) return;
    }
    send({ op: "reassign", start: selected.start, end: selected.end, speaker: speaker });
  });

  undo.addEventListener("click", () => send({ op: "undo" }));
})();
