/* Safety Observatory dashboard: the tooltip on SPC chart points (hover, or keyboard focus
   plus arrow keys) and on recorded-change markers (hover). Everything else works without
   this script (each marker has a <title>, each chart a list and a data table). No network,
   no libraries. */
(function () {
  "use strict";
  var tip = document.getElementById("tooltip");
  if (!tip) { return; }
  var active = null;

  function line(label, value) {
    var row = document.createElement("div");
    row.textContent = label + ": " + value;
    return row;
  }

  function show(point) {
    if (active) { active.classList.remove("active"); }
    active = point;
    point.classList.add("active");
    var d = point.dataset;
    tip.replaceChildren();
    var month = document.createElement("strong");
    month.textContent = d.m;
    tip.appendChild(month);
    tip.appendChild(line("Value", d.v));
    tip.appendChild(line("Numerator", d.n));
    tip.appendChild(line("Denominator", d.d));
    if (d.o !== undefined) { tip.appendChild(line("Organisations reporting", d.o)); }
    tip.appendChild(line("Mean", d.c));
    tip.appendChild(line("Lower limit", d.l));
    tip.appendChild(line("Upper limit", d.u));
    tip.appendChild(line("Point", d.t));
    if (d.b !== undefined) { tip.appendChild(line("Baseline month", "yes")); }
    if (d.ch !== undefined) { tip.appendChild(line("Recorded change", d.ch)); }
    place(point);
  }

  function showChange(marker) {
    if (active) { active.classList.remove("active"); }
    active = null;
    tip.replaceChildren();
    var title = document.createElement("strong");
    title.textContent = "Recorded change";
    tip.appendChild(title);
    var text = document.createElement("div");
    text.textContent = marker.getAttribute("data-desc");
    tip.appendChild(text);
    place(marker);
  }

  function place(point) {
    tip.hidden = false;
    // Placed in page coordinates, so it stays beside the point when the page scrolls.
    var box = point.getBoundingClientRect();
    var width = tip.offsetWidth, height = tip.offsetHeight;
    var left = Math.min(Math.max(8, box.left + box.width / 2 - width / 2),
                        document.documentElement.clientWidth - width - 8);
    var top = box.top - height - 10;
    if (top < 8) { top = box.bottom + 10; }
    tip.style.left = (left + window.scrollX) + "px";
    tip.style.top = (top + window.scrollY) + "px";
  }

  function hide() {
    if (active) { active.classList.remove("active"); }
    active = null;
    tip.hidden = true;
  }

  function pointFrom(target) {
    return target && target.closest ? target.closest("circle.pt") : null;
  }

  function markerFrom(target) {
    return target && target.closest ? target.closest("svg.spc-chart g.change") : null;
  }

  document.addEventListener("mouseover", function (event) {
    var point = pointFrom(event.target);
    if (point && point.closest("svg.spc-chart")) { show(point); return; }
    var marker = markerFrom(event.target);
    if (marker) { showChange(marker); }
  });
  document.addEventListener("mouseout", function (event) {
    if (pointFrom(event.target) || markerFrom(event.target)) { hide(); }
  });
  document.addEventListener("keydown", function (event) {
    var chart = event.target;
    if (!chart.classList || !chart.classList.contains("spc-chart")) { return; }
    if (event.key === "Escape") { hide(); return; }
    var step = { ArrowRight: 1, ArrowLeft: -1, Home: -Infinity, End: Infinity }[event.key];
    if (step === undefined) { return; }
    var points = Array.prototype.slice.call(chart.querySelectorAll("circle.pt"));
    if (!points.length) { return; }
    event.preventDefault();
    var at = active && chart.contains(active) ? points.indexOf(active) : (step > 0 ? -1 : points.length);
    var next = step === Infinity ? points.length - 1 : step === -Infinity ? 0 : at + step;
    show(points[Math.min(Math.max(next, 0), points.length - 1)]);
  });
  document.addEventListener("focusout", function (event) {
    if (event.target.classList && event.target.classList.contains("spc-chart")) { hide(); }
  });
}());
