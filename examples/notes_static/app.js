const list = document.getElementById("notes");
const show = (note) => { const li = document.createElement("li"); li.textContent = note.text; list.append(li); };
fetch("/api/v1/notes").then((r) => r.json()).then((notes) => notes.forEach(show));
new WebSocket(`ws://${location.host}/api/v1/feed`).onmessage = (e) => show(JSON.parse(e.data));
document.getElementById("new").onsubmit = (e) => {
  e.preventDefault();
  fetch("/api/v1/notes", { method: "POST", body: JSON.stringify({ text: e.target.text.value }) });
  e.target.reset();
};
