// Draws every chart of a report or the index from the Plotly specification embedded beside
// it, and makes the index sortable and filterable. Sparklines are drawn when they scroll
// into view, so an index of a thousand portfolios opens at once.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("plotly-config").textContent);

  function draw(div) {
    var spec = JSON.parse(document.getElementById(div.dataset.spec).textContent);
    Plotly.newPlot(div, spec.data, spec.layout, config);
  }

  document.querySelectorAll(".chart").forEach(draw);

  var sparks = document.querySelectorAll(".spark");
  if (sparks.length) {
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          seen.unobserve(entry.target);
          draw(entry.target);
        }
      });
    });
    sparks.forEach(function (div) { seen.observe(div); });
  }

  var table = document.querySelector("table.sortable");
  if (!table) return;
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (th, column) {
    if (!th.dataset.sort) return;
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.dataset.sort === "number";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
        if (x === "" || y === "") return (x === "") - (y === "");  // blanks last
        var order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  document.getElementById("filter").addEventListener("input", function (event) {
    var wanted = event.target.value.trim().toLowerCase();
    Array.prototype.forEach.call(body.rows, function (row) {
      row.hidden = wanted !== "" && row.dataset.filter.indexOf(wanted) < 0;
    });
  });
})();
