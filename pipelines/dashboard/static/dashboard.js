/* Safety Observatory dashboard. Two parts, no network, no libraries:

   1. Organisation charts. An ICB's organisations page is a light shell: its charts and data
      tables are drawn here from the page's data file (<ICB>.data.js, compact JSON handed to
      SafetyObservatory.organisations; pipelines/dashboard/charts.py chart_data writes it),
      exactly as pipelines/dashboard/charts.py render_chart draws the region, ICB and sector
      charts on the server. A script file rather than a fetched .json, so a page opened
      from disk (file://) draws too. docs/dashboard.md says what the file holds.
   2. The tooltip on SPC chart points (hover, or keyboard focus plus arrow keys) and on
      recorded-change markers (hover). Everything else on the measure pages works without
      this script (each marker has a <title>, each chart a list and a data table). */
(function () {
  "use strict";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                "Dec"];

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function monthLabel(index) { return MONTHS[index % 12] + " " + Math.floor(index / 12); }
  function shortMonth(index) {
    var year = Math.floor(index / 12) % 100;
    return MONTHS[index % 12] + " " + (year < 10 ? "0" : "") + year;
  }
  /* Python's f"{value:.{decimals}f}": toFixed, except that an exact tie (142.25 to one
     decimal) goes to the even digit as Python's does, not up, so the browser's charts put
     every line where the server's would. */
  function fixed(value, decimals) {
    var scale = Math.pow(10, decimals), twice = value * scale * 2;
    if (Number.isInteger(twice) && Math.abs(twice) % 2 === 1) {
      var even = Math.floor(value * scale);
      if (Math.abs(even) % 2 === 1) { even += 1; }
      return (even / scale).toFixed(decimals);
    }
    return value.toFixed(decimals);
  }
  /* Python's f"{value:,.{decimals}f}". */
  function grouped(value, decimals) {
    var text = fixed(Math.abs(value), decimals).split(".");
    text[0] = text[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (value < 0 && Number(text.join(".")) !== 0 ? "-" : "") + text.join(".");
  }
  /* pipelines/dashboard/model.py ValueFormat: number() and value(). */
  function formatter(data) {
    return {
      number: function (v) { return v === null || v === undefined ? "–" : grouped(v, data.decimals); },
      value: function (v) {
        if (v === null || v === undefined) { return "no value"; }
        if (data.percent) { return grouped(v, data.decimals) + data.unit; }
        return (grouped(v, data.decimals) + " " + data.unit).trim();
      },
      count: function (n) { return n === null || n === undefined ? "suppressed" : grouped(n, 0); }
    };
  }
  /* charts.py nice_ticks and tick_labels. */
  function niceTicks(lo, hi, count) {
    if (!(isFinite(lo) && isFinite(hi)) || hi <= lo) { return [lo]; }
    var raw = (hi - lo) / Math.max(count - 1, 1);
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (m) { return m * power; })
      .filter(function (s) { return s >= raw; })[0];
    var ticks = [], tick = Math.floor(lo / step) * step;
    while (tick <= hi + step * 1e-9) {
      if (tick >= lo - step * 1e-9) { ticks.push(Number(tick.toFixed(10))); }
      tick += step;
    }
    return ticks;
  }
  function tickLabels(ticks) {
    for (var d = 0; d < 5; d++) {
      var exact = ticks.every(function (t) { return Math.abs(Number(t.toFixed(d)) - t) < 1e-9; });
      if (exact) { return ticks.map(function (t) { return grouped(t, d); }); }
    }
    return ticks.map(function (t) { return String(Number(t.toPrecision(4))); });
  }
  function f1(v) { return fixed(v, 1); }

  /* One series' points as objects, from the file's columns. */
  function pointsOf(data, s) {
    var n = s.v ? s.v.length : 0, out = [];
    function column(values, i, segmentIndex) {
      if (!values) { return null; }
      return values.length === n ? values[i] : values[segmentIndex];
    }
    var segmentIndex = -1, previous = null;
    for (var i = 0; i < n; i++) {
      var segment = s.s ? s.s[i] : 0;
      if (segment !== previous) { segmentIndex += 1; previous = segment; }
      out.push({
        month: data.periods[s.i ? s.i[i] : i], value: s.v[i], numerator: s.n[i],
        denominator: s.d[i], centre: column(s.c, i, segmentIndex),
        lpl: column(s.l, i, segmentIndex), upl: column(s.u, i, segmentIndex),
        type: s.t[i], segment: segment, suppressed: s.x ? s.x[i] === 1 : false,
        baseline: s.b ? s.b[i] === 1 : false
      });
    }
    return out;
  }
  function segmentsOf(points) {
    var out = [];
    points.forEach(function (p) {
      if (!out.length || out[out.length - 1][0].segment !== p.segment) { out.push([]); }
      out[out.length - 1].push(p);
    });
    return out;
  }
  /* charts.py _y_domain. */
  function yDomain(points, target) {
    var values = [];
    points.forEach(function (p) {
      [p.value, p.centre, p.lpl, p.upl].forEach(function (v) {
        if (v !== null && isFinite(v)) { values.push(v); }
      });
    });
    if (target !== null && target !== undefined) { values.push(target); }
    if (!values.length) { return [0, 1]; }
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (hi - lo < 1e-9) { var pad = Math.abs(hi) * 0.1 || 1; return [lo - pad, hi + pad]; }
    var margin = (hi - lo) * 0.08, low = lo - margin;
    if (lo >= 0 && 0 > low) { low = 0; }
    return [low, hi + margin];
  }

  /* charts.py render_chart, for one organisation. */
  function chartSvg(data, s, points, changes, chartId) {
    var L = data.layout, fmt = formatter(data), types = data.types;
    var first = data.months[0], last = data.months[1];
    var nMonths = Math.max(last - first + 1, 1);
    var plotW = L.width - L.left - L.right, plotH = L.height - L.top - L.bottom;
    var step = plotW / nMonths, half = step / 2, bottom = L.top + plotH;
    var domain = yDomain(points, data.target), lo = domain[0], hi = domain[1];
    function x(month) { return L.left + (month - first + 0.5) * step; }
    function y(value) { return L.top + (hi - value) / (hi - lo) * plotH; }
    function edge(month) { return L.left + (month - first) * step; }
    var out = ['<svg class="spc-chart" id="' + chartId + '" viewBox="0 0 ' + L.width + " " +
      L.height + '" role="img" tabindex="0" aria-labelledby="' + chartId + '-t" ' +
      'aria-describedby="' + chartId + '-d"><title id="' + chartId + '-t">' + esc(s.title) +
      '</title><desc id="' + chartId + '-d">' + esc(s.desc) + "</desc>"];
    if (s.base) {
      var x0 = edge(s.base[0]), x1 = edge(s.base[1]) + step;
      out.push('<g class="baseline"><title>' + esc("Baseline: " + monthLabel(s.base[0]) +
        " to " + monthLabel(s.base[1])) + '</title><rect x="' + f1(x0) + '" y="' + L.top +
        '" width="' + f1(x1 - x0) + '" height="' + plotH + '"/><text x="' + f1(x0 + 3) +
        '" y="' + L.labelRow + '">Baseline</text></g>');
    }
    out.push('<g class="grid">');
    var ticks = niceTicks(lo, hi, 5), labels = tickLabels(ticks);
    ticks.forEach(function (tick, n) {
      var ty = y(tick);
      out.push('<line x1="' + L.left + '" x2="' + (L.width - L.right) + '" y1="' + f1(ty) +
        '" y2="' + f1(ty) + '"/><text x="' + (L.left - 6) + '" y="' + f1(ty + 5) +
        '" text-anchor="end">' + labels[n] + "</text>");
    });
    var every = Math.max(1, Math.ceil(nMonths / L.maxMonthTicks));
    for (var i = 0, n = 0; i < nMonths; i += every, n++) {
      var tx = L.left + (i + 0.5) * step;
      out.push('<line class="tick" x1="' + f1(tx) + '" x2="' + f1(tx) + '" y1="' + bottom +
        '" y2="' + (bottom + 4) + '"/><text' + (n % 2 ? ' class="alt"' : "") + ' x="' +
        f1(tx) + '" y="' + (bottom + 21) + '" text-anchor="middle">' + shortMonth(first + i) +
        "</text>");
    }
    out.push('<line class="axis" x1="' + L.left + '" x2="' + (L.width - L.right) + '" y1="' +
      bottom + '" y2="' + bottom + '"/><text class="axis-label" x="' + f1(L.left + plotW / 2) +
      '" y="' + (L.height - 6) + '" text-anchor="middle">Month</text><text class="axis-label"' +
      ' x="4" y="' + L.unitRow + '">' + esc(data.axis) + "</text></g>");
    segmentsOf(points).forEach(function (segment) {
      [["upl", "limit"], ["lpl", "limit"], ["centre", "centre"]].forEach(function (line) {
        var parts = [], joined = false;
        segment.forEach(function (p) {
          var v = p[line[0]];
          if (v === null) { joined = false; return; }
          var px = x(p.month), py = y(v);
          parts.push(joined ? "V" + f1(py) : "M" + f1(px - half) + "," + f1(py));
          parts.push("H" + f1(px + half));
          joined = true;
        });
        if (parts.length) {
          out.push('<path class="' + line[1] + '" data-segment="' + segment[0].segment +
            '" d="' + parts.join("") + '"/>');
        }
      });
    });
    if (data.target !== null && lo <= data.target && data.target <= hi) {
      var ty = y(data.target);
      out.push('<line class="target" x1="' + L.left + '" x2="' + (L.width - L.right) +
        '" y1="' + f1(ty) + '" y2="' + f1(ty) + '"/>');
    }
    // Recorded changes: markers close together share one number label ("1,2").
    var byMonth = {}, groups = [];
    changes.forEach(function (c, k) {
      var cx = edge(c.m);
      if (groups.length && cx - groups[groups.length - 1].x < L.markerLabelGap) {
        groups[groups.length - 1].numbers.push(k + 1);
      } else {
        groups.push({ x: cx, numbers: [k + 1] });
      }
    });
    var firstOf = {};
    groups.forEach(function (g) { firstOf[g.numbers[0]] = g; });
    changes.forEach(function (c, k) {
      var cx = edge(c.m), g = firstOf[k + 1];
      (byMonth[c.m] = byMonth[c.m] || []).push(c.summary);
      out.push('<g class="' + (c.rebases ? "change rebase" : "change") + '" data-change-id="' +
        esc(c.id) + '" data-desc="' + esc(c.summary) + '"><title>' + esc(c.summary) +
        '</title><line class="hit" x1="' + f1(cx) + '" x2="' + f1(cx) + '" y1="' +
        (L.labelRow - 14) + '" y2="' + bottom + '"/><line x1="' + f1(cx) + '" x2="' + f1(cx) +
        '" y1="' + (L.labelRow + 2) + '" y2="' + bottom + '"/>' +
        (g ? '<text x="' + f1(g.x) + '" y="' + (L.labelRow - 2) + '" text-anchor="middle">' +
          g.numbers.join(",") + "</text>" : "") + "</g>");
    });
    var path = [], before = null;
    points.forEach(function (p) {
      if (p.value === null) { before = null; return; }
      var joined = before !== null && p.month === before.month + 1;
      path.push((joined ? "L" : "M") + f1(x(p.month)) + "," + f1(y(p.value)));
      before = p;
    });
    if (path.length) { out.push('<path class="values" d="' + path.join("") + '"/>'); }
    out.push('<g class="points">');
    points.forEach(function (p) {
      if (p.value === null) { return; }
      var type = types[p.type] || types[0];
      var attrs = ' data-m="' + monthLabel(p.month) + '" data-v="' + esc(fmt.value(p.value)) +
        '" data-n="' + fmt.count(p.numerator) + '" data-d="' + fmt.count(p.denominator) +
        '" data-t="' + esc(type[1]) + '" data-c="' + fmt.number(p.centre) + '" data-l="' +
        fmt.number(p.lpl) + '" data-u="' + fmt.number(p.upl) + '"';
      if (p.baseline && s.base && p.segment === 0) { attrs += ' data-b="1"'; }
      if (byMonth[p.month]) { attrs += ' data-ch="' + esc(byMonth[p.month].join("; ")) + '"'; }
      out.push('<circle class="pt ' + type[2] + '" cx="' + f1(x(p.month)) + '" cy="' +
        f1(y(p.value)) + '" r="4"' + attrs + "/>");
    });
    out.push("</g></svg>");
    return out.join("");
  }

  function icon(kind, name, label) {
    return '<span class="icon-with-label"><svg class="icon icon-' + kind + " icon-" + name +
      '" data-icon="' + name + '" width="40" height="40" viewBox="0 0 40 40" role="img" ' +
      'aria-label="' + esc(label) + '"><title>' + esc(label) + '</title><use href="#mdc-' +
      name + '"/></svg><span class="icon-text">' + esc(label) + "</span></span>";
  }

  /* templates/macros.html.j2 chart_card, for one organisation. */
  function card(data, s, chartId, base) {
    var fmt = formatter(data), types = data.types;
    var points = s.v ? pointsOf(data, s) : [];
    var all = s.changes || [];
    var changes = all.filter(function (c) {
      return data.months[0] <= c.m && c.m <= data.months[1];
    });
    var valued = points.filter(function (p) { return p.value !== null; }).length;
    var out = ['<figure class="chart-card" id="' + esc(s.anchor) +
      '" data-level="organisation" data-series-key="' + esc(s.key) + '" data-measure="' +
      esc(data.measure) + '" data-points="' + valued + '"><figcaption><h3 class="chart-title">' +
      esc(s.title) + "</h3>"];
    if (s.subtitle) { out.push('<p class="subtitle">' + esc(s.subtitle) + "</p>"); }
    out.push('<div class="icons">' + (s.vi ? icon("variation", s.vi, s.vl) : "") +
      (s.ai ? icon("assurance", s.ai, s.al) : "") + "</div>");
    out.push('<p class="reading">' + esc(s.reading) + '</p><p class="meta">' +
      (s.latest ? "Latest: " + esc(s.latest) + ". " : "") + esc(s.completeness) +
      (s.trial ? '<span class="trial">Trial limits: limits rest on fewer than 12 months, so' +
        " the limits may still move.</span>" : "") +
      (s.gaps ? '<span class="gaps">' + esc(s.gaps) + "</span>" : "") + "</p></figcaption>");
    if (valued) {
      out.push('<div class="chart-box">' + chartSvg(data, s, points, changes, chartId) + "</div>");
    }
    if (changes.length) {
      out.push('<div class="changes"><p class="changes-title">Recorded change' +
        (changes.length !== 1 ? "s" : "") + "</p><ol>");
      changes.forEach(function (c, k) {
        out.push('<li value="' + (k + 1) + '" data-change-id="' + esc(c.id) + '"><strong>' +
          monthLabel(c.m) + "</strong>, " + esc(c.id) + " (" + esc(c.kind) +
          (c.rebases ? "; limits recalculated from here" : "") + "): " + esc(c.text) + "</li>");
      });
      out.push("</ol></div>");
    }
    if (s.notes && s.notes.length) {
      out.push('<ul class="method-notes">' + s.notes.map(function (note) {
        return "<li>" + esc(note) + "</li>";
      }).join("") + "</ul>");
    }
    out.push('<p class="download"><a href="' + esc((base || "") + s.csv) + '" download>Download the' +
      " data (CSV of this ICB’s organisation charts; this chart’s rows: series_key " +
      esc(s.key) + ")</a></p>");
    var byMonth = {};
    all.forEach(function (c) { (byMonth[c.m] = byMonth[c.m] || []).push(c.id + ": " + c.text); });
    out.push('<details class="data-table"><summary>Data table (' + points.length + " month" +
      (points.length !== 1 ? "s" : "") + ')</summary><div class="table-scroll"><table><thead>' +
      '<tr><th scope="col">Month</th><th scope="col">Value</th><th scope="col">Numerator</th>' +
      '<th scope="col">Denominator</th><th scope="col">Centre</th><th scope="col">Lower' +
      ' limit</th><th scope="col">Upper limit</th><th scope="col">Point</th>' +
      (s.base ? '<th scope="col">Baseline</th>' : "") +
      (changes.length ? '<th scope="col">Recorded change</th>' : "") + "</tr></thead><tbody>");
    points.forEach(function (p) {
      var type = types[p.type] || types[0];
      out.push('<tr><th scope="row">' + monthLabel(p.month) + "</th><td>" +
        fmt.number(p.value) + "</td><td>" + fmt.count(p.numerator) + "</td><td>" +
        fmt.count(p.denominator) + "</td><td>" + fmt.number(p.centre) + "</td><td>" +
        fmt.number(p.lpl) + "</td><td>" + fmt.number(p.upl) + "</td><td>" +
        (type[0] === null ? "–" : esc(type[1])) + "</td>" +
        (s.base ? "<td>" + (p.baseline && p.segment === 0 ? "Yes" : "") + "</td>" : "") +
        (changes.length ? "<td>" + esc((byMonth[p.month] || []).join("; ")) + "</td>" : "") +
        "</tr>");
    });
    out.push("</tbody></table></div></details></figure>");
    return out.join("");
  }

  /* Draw every organisation's card into its sector's place on the page. */
  function organisations(data) {
    var counter = 0;
    var boxes = document.querySelectorAll("div.charts[data-sector]");
    Array.prototype.forEach.call(boxes, function (box) {
      var html = [];
      data.series.forEach(function (s) {
        if (s.sector === box.dataset.sector) { html.push(card(data, s, "chart-" + counter++)); }
      });
      box.innerHTML = html.join("");
      box.removeAttribute("aria-busy");
    });
    /* A board report's organisation pages (pipelines/report): one place per organisation
       and measure, named by the measure and series key; CSV links are relative to the
       data file's folder (data-base), not to the page. */
    var slots = document.querySelectorAll("div.org-chart[data-measure][data-key]");
    if (slots.length) {
      var byKey = {};
      data.series.forEach(function (s) { byKey[s.key] = s; });
      Array.prototype.forEach.call(slots, function (slot) {
        var s = slot.dataset.measure === data.measure ? byKey[slot.dataset.key] : null;
        if (s) {
          slot.innerHTML = card(data, s, data.measure + "-chart-" + counter++, slot.dataset.base);
          slot.removeAttribute("aria-busy");
        }
      });
    }
    var note = document.getElementById("needs-script");
    if (note) { note.hidden = true; }
    // The summary table links to each card: follow a link the page was opened with.
    if (location.hash.length > 1) {
      var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
      if (target) { target.scrollIntoView(); }
    }
  }
  window.SafetyObservatory = { organisations: organisations };

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
