// majlis web page: search -> click -> hear it; transcripts that follow the audio. No build step, no framework.
// Everything from the index is put in the page with textContent, never innerHTML.
"use strict";

(function () {
  const state = JSON.parse(document.getElementById("majlis-state").textContent || "{}");
  const player = document.getElementById("player");

  // The link `majlis serve --edit` prints carries the edit token in its #fragment (never sent to the
  // server, never in a log): kept for the editor (editor.js) and taken out of the address bar.
  if (location.hash.startsWith("#edit=")) {
    try { localStorage.setItem("majlis-edit-token", decodeURIComponent(location.hash.slice(6))); } catch (e) { /* private mode */ }
    history.replaceState(null, "", location.pathname + location.search);
  }

  function clock(seconds) {
    const tenths = Math.round(Math.max(0, seconds) * 10);
    const h = Math.floor(tenths / 36000), m = Math.floor((tenths % 36000) / 600), rest = tenths % 600;
    const s = String(Math.floor(rest / 10)).padStart(2, "0") + "." + (rest % 10);
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function audioUrl(episode) { return "/audio/" + encodeURIComponent(episode); }
  function episodeUrl(episode, t) {
    return "/episode/" + encodeURIComponent(episode) + (t ? "?t=" + (+t.toFixed(2)) : "");
  }

  // Seek once the browser knows the duration (setting currentTime earlier is ignored), then play.
  function playAt(t, src) {
    if (!player) return;
    const go = () => {
      player.currentTime = t;
      const p = player.play();
      if (p) p.catch(() => {});  // autoplay refused: stay paused at t, the controls are there
    };
    if (src && player.getAttribute("src") !== src) {
      player.setAttribute("src", src);
      player.addEventListener("loadedmetadata", go, { once: true });
      player.load();
    } else if (player.readyState >= 1) {
      go();
    } else {
      player.addEventListener("loadedmetadata", go, { once: true });
    }
  }

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON|AUDIO|SUMMARY)$/.test(el.tagName));
  }

  // Space plays and pauses, except where space already means something.
  document.addEventListener("keydown", (e) => {
    if (e.key !== " " || e.ctrlKey || e.metaKey || e.altKey || !player || !player.getAttribute("src")) return;
    if (typing(e.target)) return;
    e.preventDefault();
    if (player.paused) { const p = player.play(); if (p) p.catch(() => {}); } else player.pause();
  });

  if (document.body.classList.contains("page-search")) searchPage();
  if (document.body.classList.contains("page-episode")) episodePage();

  // -- search page -------------------------------------------------------------------------------------
  function searchPage() {
    const form = document.getElementById("search-form");
    const q = document.getElementById("q");
    const results = document.getElementById("results");
    const library = document.getElementById("library");
    const summary = document.getElementById("results-summary");
    const list = document.getElementById("hits");
    const template = document.getElementById("hit-template");
    const bar = document.getElementById("playerbar");
    let pending = null;

    function params() {
      const p = new URLSearchParams();
      const query = q.value.trim();
      if (query) p.set("q", query);
      for (const box of form.querySelectorAll('input[name="speaker"]:checked')) p.append("speaker", box.value);
      const ep = form.querySelector('select[name="episode"]');
      if (ep && ep.value) p.set("episode", ep.value);
      return p;
    }

    function snippet(node, text) {
      // [matched words] -> <mark>; the rest stays text.
      const re = /\[([^\[\]]*)\]/g;
      let at = 0, m;
      while ((m = re.exec(text))) {
        node.append(text.slice(at, m.index));
        const mark = document.createElement("mark");
        mark.textContent = m[1];
        node.append(mark);
        at = re.lastIndex;
      }
      node.append(text.slice(at));
    }

    function hitNode(h) {
      const li = template.content.firstElementChild.cloneNode(true);
      li.className = "hit " + (state.colours[h.speaker] || "spk-x");
      li.dataset.episode = h.episode;
      li.dataset.start = h.start;
      li.dataset.end = h.end;
      li.querySelector(".hit-speaker").textContent = h.speaker;
      li.querySelector(".hit-episode").textContent = state.titles[h.episode] || h.episode;
      li.querySelector(".hit-time").textContent = clock(h.start) + "–" + clock(h.end);
      li.querySelector(".hit-play").setAttribute("aria-label", `Play ${h.speaker} at ${clock(h.start)}`);
      snippet(li.querySelector(".hit-snippet"), h.text);
      li.querySelector(".hit-open").href = episodeUrl(h.episode, h.start);
      return li;
    }

    function show(hasQuery) {
      results.hidden = !hasQuery;
      library.hidden = hasQuery;
    }

    async function search(push) {
      const p = params();
      const url = p.toString() ? "/search?" + p : "/";
      if (push && url !== location.pathname + location.search) history.pushState(null, "", url);
      if (!p.get("q")) { show(false); document.title = "majlis"; return; }
      show(true);
      document.title = p.get("q") + " · majlis";
      p.set("limit", state.limit || 50);
      const ticket = pending = {};
      summary.textContent = "Searching…";
      let data, ok;
      try {
        const r = await fetch("/api/search?" + p, { headers: { Accept: "application/json" } });
        ok = r.ok;
        data = await r.json();
      } catch (err) {
        ok = false;
        data = { error: "the server did not answer (is majlis serve still running?)" };
      }
      if (ticket !== pending) return;  // a newer search was started meanwhile
      list.replaceChildren();
      summary.replaceChildren();
      if (!ok) {
        const span = document.createElement("span");
        span.className = "error";
        span.setAttribute("role", "alert");
        span.textContent = data.error || "search failed";
        summary.append(span);
        return;
      }
      if (!data.length) {
        const quote = document.createElement("q");
        quote.textContent = p.get("q");
        summary.append("No matches for ", quote);
        return;
      }
      const more = data.length >= (state.limit || 50) ? "+" : "";
      summary.textContent = `${data.length}${more} result${data.length === 1 ? "" : "s"} · click one to listen`;
      list.append(...data.map(hitNode));
    }

    function fromLocation() {
      const p = new URLSearchParams(location.search);
      q.value = p.get("q") || "";
      const chosen = new Set(p.getAll("speaker").map((s) => s.trim().toLowerCase()));
      for (const box of form.querySelectorAll('input[name="speaker"]')) box.checked = chosen.has(box.value.toLowerCase());
      const ep = form.querySelector('select[name="episode"]');
      if (ep) ep.value = p.get("episode") || "";
    }

    form.addEventListener("submit", (e) => { e.preventDefault(); search(true); });
    form.addEventListener("change", (e) => {
      if (e.target.name === "speaker" || e.target.name === "episode") search(true);
    });
    window.addEventListener("popstate", () => { fromLocation(); search(false); });

    list.addEventListener("click", (e) => {
      const button = e.target.closest(".hit-play");
      if (!button) return;
      const li = button.closest(".hit");
      if (e.detail > 0) button.blur();  // clicked with a pointer: leave space to play/pause, not to replay
      const start = parseFloat(li.dataset.start), episode = li.dataset.episode;
      for (const other of list.querySelectorAll(".hit.playing")) other.classList.remove("playing");
      li.classList.add("playing");
      bar.hidden = false;
      const who = document.getElementById("now-speaker");
      who.className = "who " + (state.colours[li.querySelector(".hit-speaker").textContent] || "spk-x");
      document.getElementById("now-name").textContent = li.querySelector(".hit-speaker").textContent;
      document.getElementById("now-where").textContent = li.querySelector(".hit-time").textContent;
      document.getElementById("now-episode").textContent = state.titles[episode] || episode;
      document.getElementById("now-open").href = episodeUrl(episode, start);
      playAt(start, audioUrl(episode));
    });
  }

  // -- episode page ------------------------------------------------------------------------------------
  function episodePage() {
    const segs = Array.from(document.querySelectorAll(".seg"));
    const starts = segs.map((s) => parseFloat(s.dataset.s));
    const words = Array.from(document.querySelectorAll(".w"));
    const wordStarts = words.map((w) => parseFloat(w.dataset.s));
    const follow = document.getElementById("follow");
    let current = segs.findIndex((s) => s.classList.contains("current"));
    let currentWord = -1;
    let following = true;

    function lastAtOrBefore(arr, t) {  // binary search: index of the last value <= t, or -1
      let lo = 0, hi = arr.length - 1, found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (arr[mid] <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
      }
      return found;
    }

    function reveal(seg) {
      const tall = seg.getBoundingClientRect().height > window.innerHeight * 0.5;
      seg.scrollIntoView({ block: tall ? "start" : "center", behavior: "smooth" });
    }

    function highlight(t, scroll) {
      const i = lastAtOrBefore(starts, t);
      if (i !== current) {
        if (current >= 0 && segs[current]) segs[current].classList.remove("current");
        current = i;
        if (i >= 0) {
          segs[i].classList.add("current");
          if (scroll && following) reveal(segs[i]);
        }
      }
      const w = lastAtOrBefore(wordStarts, t);
      if (w !== currentWord) {
        if (currentWord >= 0) words[currentWord].classList.remove("now");
        currentWord = w;
        if (w >= 0 && !player.paused) words[w].classList.add("now");
      }
    }

    function seekTo(t) {
      following = true;
      follow.hidden = true;
      history.replaceState(null, "", episodeUrl(state.episode, t));
      highlight(t, false);
      playAt(t);
    }

    // Reading ahead or back pauses the auto-scroll; the button (or a click on the text) brings it back.
    function userScrolled() {
      if (!player || player.paused || !following) return;
      following = false;
      follow.hidden = false;
    }
    window.addEventListener("wheel", userScrolled, { passive: true });
    window.addEventListener("touchmove", userScrolled, { passive: true });
    document.addEventListener("keydown", (e) => {
      if (!typing(e.target) && /^(PageUp|PageDown|ArrowUp|ArrowDown|Home|End)$/.test(e.key)) userScrolled();
    });
    follow.addEventListener("click", () => {
      following = true;
      follow.hidden = true;
      if (current >= 0) reveal(segs[current]);
    });

    document.getElementById("transcript").addEventListener("click", (e) => {
      if (String(window.getSelection())) return;  // selecting a quote to copy is not a request to seek
      const target = e.target.closest(".w, .ts, .seg");
      if (!target || !player) return;
      e.preventDefault();
      seekTo(parseFloat(target.dataset.s));
    });

    if (!player) return;
    player.addEventListener("timeupdate", () => highlight(player.currentTime, true));
    player.addEventListener("seeked", () => highlight(player.currentTime, true));
    player.addEventListener("pause", () => { if (currentWord >= 0) words[currentWord].classList.remove("now"); });

    if (state.t !== null && state.t !== undefined) {
      if (current >= 0) segs[current].scrollIntoView({ block: "center" });
      playAt(state.t);
    }
  }
})();
