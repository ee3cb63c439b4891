// Small progressive enhancements; every page works without JavaScript.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copyTarget);
  if (!source) return;
  const text = source.value || source.textContent;
  const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 2000); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => { source.select && source.select(); document.execCommand("copy"); done(); });
  } else {
    source.select && source.select();
    document.execCommand("copy");
    done();
  }
});
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// A select that submits its form when changed (the company switcher): no inline handler, which
// the Content-Security-Policy would refuse.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-submit-on-change]");
  if (select && select.form) select.form.submit();
});

// The phone menu (the Menu button in the header): the sections and account links fold away on
// narrow screens only once this script runs, so without JavaScript they stay on the page.
(() => {
  const toggle = document.querySelector(".nav-toggle");
  if (!toggle) return;
  const root = document.documentElement;
  root.classList.add("js-nav");
  toggle.addEventListener("click", () => {
    const open = root.classList.toggle("nav-open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
})();
