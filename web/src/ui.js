// Small DOM helpers shared by the page's parts: element building (no innerHTML, so names
// from other users can never become markup), the one message line, and formatting.

export const $ = (id) => document.getElementById(id);

/** `el("button", {type: "button", onclick: f}, "text", child…)` */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && !key.includes("-")) node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}

// The message line shows one sentence at a time. Each source of trouble has a key, so the
// sentence goes away when that condition clears (the next poll succeeds, a search works…).
const messages = new Map();
export const feedback = {
  set(key, text) {
    messages.delete(key);
    messages.set(key, text);
    render();
  },
  clear(key) {
    if (messages.delete(key)) render();
  },
};
function render() {
  const box = $("message");
  const last = [...messages.values()].pop();
  box.textContent = last || "";
  box.hidden = !last;
}

export function formatBytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(0)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

export function formatLatLng(lat, lng) {
  return `${Math.abs(lat).toFixed(5)}° ${lat >= 0 ? "N" : "S"}, ${Math.abs(lng).toFixed(5)}° ${lng >= 0 ? "E" : "W"}`;
}

/** Replaces `button` by "Are you sure? [Yes] [No]" until one is picked. */
export function confirmInline(button, question, yesLabel, onYes) {
  const box = el("span", { className: "confirm", role: "group" });
  const no = el("button", { type: "button", className: "quiet", onclick: () => box.replaceWith(button) }, "Keep");
  const yes = el("button", {
    type: "button", className: "danger",
    onclick: async () => {
      yes.disabled = true;
      await onYes();
      if (box.isConnected) box.replaceWith(button);
    },
  }, yesLabel);
  box.append(el("span", {}, question), " ", yes, " ", no);
  button.replaceWith(box);
  yes.focus();
}

export const isPhone = () => window.matchMedia("(max-width: 640px)").matches;
