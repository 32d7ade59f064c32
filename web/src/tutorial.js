// A few short steps per role (downloader, bookmarker, viewer), each pointing at the real
// control it names. Where a person stands is stored by the server (`tutorial-mode`); the help
// button opens the steps again at any time.

import { api } from "./api.js";
import { $ } from "./ui.js";

const STEPS = {
  downloader: [
    ["#search", "Search for a city, a street or a café here; results appear as you type."],
    ["#tab-regions", "Open Regions to download an area: its streets, buildings and places then work offline in this grain."],
    ["#map", "Right-click the map (long-press on a phone) to bookmark a spot. Everyone in this grain sees bookmarks."],
    ["#export", "Export the bookmarks for OrganicMaps or another map app."],
    ["#help", "This button shows these tips again."],
  ],
  bookmarker: [
    ["#search", "Search for a place here; results appear as you type."],
    ["#map", "Right-click the map (long-press on a phone) to bookmark a spot. Everyone in this grain sees bookmarks."],
    ["#bookmarks-empty, #bookmarks", "Your bookmarks are listed here; pick one to fly to it."],
    ["#help", "This button shows these tips again."],
  ],
  viewer: [
    ["#search", "Search for a place here; results appear as you type."],
    ["#panel-bookmarks", "The bookmarks shared in this grain: pick one to fly to it."],
    ["#export", "Export them for OrganicMaps or another map app."],
    ["#help", "This button shows these tips again."],
  ],
};

export function roleOf(permissions) {
  return permissions.includes("download") ? "downloader" : permissions.includes("bookmarks") ? "bookmarker" : "viewer";
}

export function setupTutorial({ onShow }) {
  let role = "viewer";
  let step = 0;
  let mode = null;
  let shown = false;

  function highlight(selector) {
    for (const node of document.querySelectorAll(".tutorial-target")) node.classList.remove("tutorial-target");
    if (selector) {
      const target = document.querySelector(selector);
      if (target) target.classList.add("tutorial-target");
    }
  }

  function show(at) {
    const steps = STEPS[role];
    step = at;
    shown = true;
    const [selector, text] = steps[step];
    $("tutorial").hidden = false;
    $("tutorial").dataset.role = role;
    $("tutorial-text").textContent = `${step + 1}/${steps.length}: ${text}`;
    $("tutorial-next").textContent = step === steps.length - 1 ? "Done" : "Next";
    highlight(selector);
    onShow();
  }

  function close() {
    shown = false;
    $("tutorial").hidden = true;
    highlight(null);
    if (mode !== "TUTORIAL_DONE") {
      mode = "TUTORIAL_DONE";
      api.setTutorial("TUTORIAL_DONE").catch(() => {});
    }
  }

  $("tutorial-next").addEventListener("click", () => {
    if (step + 1 < STEPS[role].length) {
      if (mode === "TUTORIAL_INTRO") {
        mode = "TUTORIAL_STARTED";
        api.setTutorial("TUTORIAL_STARTED").catch(() => {});
      }
      show(step + 1);
    } else {
      close();
    }
  });
  $("tutorial-close").addEventListener("click", close);
  $("help").addEventListener("click", () => (shown ? close() : show(0)));

  return {
    update(status) {
      role = roleOf(status.permissions);
      if (mode === null) {
        mode = status["tutorial-mode"];
        if (mode !== "TUTORIAL_DONE") show(0);
      }
    },
  };
}
