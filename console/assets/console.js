// Progressive enhancement only: every page works without it.
// A print button on pages that offer one, and times also shown in the
// reader's own time zone on hover.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-print]").forEach(function (el) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = "Print this page";
    b.className = "no-print";
    b.addEventListener("click", function () { window.print(); });
    el.appendChild(b);
  });
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) { t.title = d.toLocaleString() + " (your time zone)"; }
  });
});
