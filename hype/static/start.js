"use strict";
// The instructions page: create a session, then go to its page (whose address resumes it later).
document.getElementById("start").addEventListener("submit", async (event) => {
  event.preventDefault();
  const worker = document.getElementById("worker").value.trim();
  const response = await fetch("/api/sessions", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(worker ? {worker} : {}),
  });
  const body = await response.json();
  if (!response.ok) {
    const error = document.getElementById("error");
    error.textContent = body.detail || "Could not start.";
    error.hidden = false;
    return;
  }
  window.location.assign(body.url);
});
