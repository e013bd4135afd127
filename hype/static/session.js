"use strict";
// The trial loop. The server owns the plan and the staircase: this page asks for the next trial,
// shows it (countdown, timed exposure and noise masks in HYPE_time), measures times with
// performance.now() and posts the answer with the trial index, so a replayed or skipped answer is
// refused by the server rather than trusted here.
(() => {
  const root = document.getElementById("trial");
  const api = `/api/sessions/${root.dataset.token}`;
  const stage = document.getElementById("stage");
  const stimulus = document.getElementById("stimulus");
  const mask = document.getElementById("mask");
  const countdown = document.getElementById("countdown");
  const feedback = document.getElementById("feedback");
  const progress = document.getElementById("progress");
  const buttons = Array.from(document.querySelectorAll("button[data-answer]"));
  const size = `${stage.dataset.size}px`;
  stage.style.width = size;
  stage.style.height = size;
  const MASK_MS = 30;
  const COUNT_MS = 500;
  let current = null;
  let answerable = false;
  let shownAt = 0;
  let shownMs = null;

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // fetch, retried every second for about a minute when the connection fails or a request hangs for
  // 10 s (the server restarting). The server takes each trial's answer once, so a resent answer whose
  // first copy did arrive is refused with 409, which the caller turns into a resync. Returns the
  // response, or null when the server stayed unreachable.
  async function request(url, options = {}) {
    for (let attempt = 0; attempt < 60; attempt++) {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 10000);
      try {
        return await fetch(url, {...options, signal: abort.signal});
      } catch (error) {
        progress.textContent = "Reconnecting…";
        await sleep(1000);
      } finally {
        clearTimeout(timer);
      }
    }
    return null;
  }
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const masks = [];

  async function loadImage(element, src) {
    element.src = src;
    await element.decode();
  }

  // Keep an element on screen for about `ms`, counted from the first frame that shows it.
  async function showFor(element, ms) {
    element.hidden = false;
    const start = await frame();
    let t = start;
    while (t - start < ms - 8) {
      t = await frame();
    }
    element.hidden = true;
    return t - start;
  }

  function setAnswerable(on) {
    answerable = on;
    buttons.forEach((b) => { b.disabled = !on; });
    root.dataset.ready = on ? "1" : "0";
  }

  function fail(message) {
    const error = document.getElementById("error");
    error.textContent = message;
    error.hidden = false;
  }

  async function present(state) {
    current = state;
    root.dataset.phase = state.phase;
    if (state.phase === "done") {
      progress.textContent = "";
      stage.hidden = true;
      document.querySelector(".answers").hidden = true;
      document.getElementById("code").textContent = state.code;
      document.getElementById("done").hidden = false;
      return;
    }
    const label = state.phase === "tutorial" ? "Tutorial" : `Evaluation, block ${state.block} of ${state.blocks}`;
    progress.textContent = `${label}: image ${state.position} of ${state.total}`;
    stimulus.hidden = true;
    await loadImage(stimulus, state.image);
    if (state.exposure_ms === null) {
      stimulus.hidden = false;
      shownAt = await frame();
      shownMs = null;
    } else {
      while (masks.length < state.masks) {
        const m = new Image();
        m.src = `/masks/${masks.length}`;
        await m.decode();
        masks.push(m);
      }
      countdown.hidden = false;
      for (const n of ["3", "2", "1"]) {
        countdown.textContent = n;
        await sleep(COUNT_MS);
      }
      countdown.hidden = true;
      shownMs = await showFor(stimulus, state.exposure_ms);
      for (const m of masks) {
        mask.src = m.src;
        await showFor(mask, MASK_MS);
      }
      shownAt = await frame();
    }
    setAnswerable(true);
  }

  async function answer(choice) {
    if (!answerable) return;
    setAnswerable(false);
    const responseMs = performance.now() - shownAt;
    const body = {trial: current.trial, answer: choice, response_ms: Math.round(responseMs * 10) / 10};
    if (shownMs !== null) body.shown_ms = Math.round(shownMs * 10) / 10;
    const response = await request(`${api}/answers`, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
    });
    if (response === null) return fail("The server cannot be reached; reload the page later to continue.");
    const reply = await response.json();
    if (!response.ok) {
      // A 409 means the server already has this answer (a second tab, a resent request): resync.
      if (response.status === 409) return start();
      return fail(reply.detail || "The answer was not accepted.");
    }
    stimulus.hidden = true;
    if ("correct" in reply) {
      feedback.textContent = reply.correct ? `Correct: it was ${reply.truth}.` : `Wrong: it was ${reply.truth}.`;
      feedback.className = reply.correct ? "feedback right" : "feedback wrong";
      await sleep(700);
      feedback.textContent = "";
      feedback.className = "feedback";
    }
    await present(reply.next);
  }

  async function start() {
    const response = await request(api);
    if (response === null) return fail("The server cannot be reached; reload the page later to continue.");
    if (!response.ok) return fail("Unknown session.");
    await present(await response.json());
  }

  buttons.forEach((b) => b.addEventListener("click", () => answer(b.dataset.answer)));
  document.addEventListener("keydown", (event) => {
    if (event.repeat) return;
    const key = event.key.toLowerCase();
    if (key === "r") answer("real");
    if (key === "f") answer("fake");
  });
  start().catch((e) => fail(String(e)));
})();
