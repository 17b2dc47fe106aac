// Live updates for the preview page.
//
// The server sends a "change" event after every relevant save. The page then fetches
// its own URL and swaps in only what changed: the marked sections, and the email frames
// whose version changed. Nothing reloads as a whole, so the scroll position, the open
// tab and whatever is typed into the picker stay as they are.
"use strict";

(function () {
  const live = document.getElementById("live");
  let tag = document.body.dataset.tag;
  let busy = false;
  let pending = false;

  function status(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  // Email frames: as tall as their content, so only the page scrolls.
  function fit(frame) {
    const root = frame.contentDocument && frame.contentDocument.documentElement;
    if (!root) return;
    const resize = () => {
      const height = Math.ceil(root.getBoundingClientRect().height);
      if (height > 0) frame.style.height = height + "px";
    };
    resize();
    new ResizeObserver(resize).observe(root);
  }

  function watchFrames(scope) {
    for (const frame of scope.querySelectorAll("iframe[data-frame]")) {
      frame.addEventListener("load", () => fit(frame));
      if (frame.contentDocument && frame.contentDocument.readyState === "complete") fit(frame);
    }
  }

  function showTab(name) {
    const tabs = document.querySelectorAll("[data-tab]");
    if (![...tabs].some((tab) => tab.dataset.tab === name)) name = "email";
    for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
    for (const panel of document.querySelectorAll("[data-panel]")) {
      panel.hidden = panel.dataset.panel !== name;
    }
  }

  function wireTabs() {
    for (const tab of document.querySelectorAll("[data-tab]")) {
      tab.addEventListener("click", () => {
        history.replaceState(null, "", "#" + tab.dataset.tab);
        showTab(tab.dataset.tab);
      });
    }
    showTab(location.hash.slice(1));
  }

  function liveIds(root) {
    return [...root.querySelectorAll("[data-live], iframe[data-frame]")].map((node) => node.id).join(" ");
  }

  function swap(fresh) {
    const main = document.getElementById("main");
    const freshMain = fresh.getElementById("main");
    document.title = fresh.title;
    if (liveIds(main) !== liveIds(freshMain)) {
      // The page changed shape (an error appeared or went away): take it whole.
      main.replaceWith(document.adoptNode(freshMain));
      wireTabs();
      watchFrames(document);
      return;
    }
    for (const node of freshMain.querySelectorAll("[data-live]")) {
      const current = document.getElementById(node.id);
      if (current.outerHTML !== node.outerHTML) current.replaceWith(document.adoptNode(node));
    }
    for (const frame of freshMain.querySelectorAll("iframe[data-frame]")) {
      const current = document.getElementById(frame.id);
      if (current.dataset.frame === frame.dataset.frame) continue;
      current.dataset.frame = frame.dataset.frame;
      // replace(), not a new src: no history entry per save, so Back still leaves the page.
      current.contentWindow.location.replace(frame.dataset.frame);
    }
  }

  async function refresh() {
    if (busy) {
      pending = true;
      return;
    }
    busy = true;
    status("updating", "Updating…");
    try {
      const response = await fetch(location.href, { cache: "no-store" });
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      if (!fresh.getElementById("main")) throw new Error("not a preview page");
      swap(fresh);
      document.body.dataset.tag = tag = fresh.body.dataset.tag;
      status("live", "Live");
    } catch (error) {
      status("offline", "Not connected");
    } finally {
      busy = false;
      if (pending) {
        pending = false;
        refresh();
      }
    }
  }

  const events = new EventSource("/_preview/events");
  events.addEventListener("change", (event) => {
    if (event.data !== tag) {
      tag = event.data;
      refresh();
    } else {
      status("live", "Live");
    }
  });
  events.addEventListener("error", () => status("offline", "Not connected: is the preview still running?"));

  wireTabs();
  watchFrames(document);
})();
