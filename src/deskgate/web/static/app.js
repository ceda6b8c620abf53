// Copy buttons: <button data-copy="#element-id">Copy</button>
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.value !== undefined ? source.value : source.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});
// Forms that ask before doing something that can't be undone: <form data-confirm="…">
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
// A select that re-renders the page for its value: <select data-reload-param="idp">
document.addEventListener("change", (event) => {
  const param = event.target.dataset && event.target.dataset.reloadParam;
  if (param) window.location.search = "?" + param + "=" + encodeURIComponent(event.target.value);
});
