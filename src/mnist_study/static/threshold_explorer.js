// The threshold explorer's view: a slider over the decision scores, preset thresholds, the
// measures and confusion counts at the threshold, its point on the precision-recall curve, and
// the images just past it on each side. Python computes every number; this file only shows them.

const SVG = "http://www.w3.org/2000/svg";

function element(tag, className, parent, text = "") {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  parent.appendChild(node);
  return node;
}

function svgElement(tag, attributes, parent) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  parent.appendChild(node);
  return node;
}

// The precision-recall curve in a square plot, recall across, precision up.
function curvePlot(parent, curve) {
  const size = 230, margin = 36, inner = size - margin - 14;
  const x = (recall) => margin + recall * inner;
  const y = (precision) => 10 + (1 - precision) * inner;
  const svg = svgElement("svg", { class: "threshold-explorer-curve", width: size, height: size }, parent);
  svgElement("rect", { x: margin, y: 10, width: inner, height: inner, class: "frame" }, svg);
  for (const tick of [0, 0.5, 1]) {
    svgElement("text", { x: x(tick), y: size - 20, "text-anchor": "middle" }, svg).textContent = tick;
    svgElement("text", { x: margin - 4, y: y(tick) + 4, "text-anchor": "end" }, svg).textContent = tick;
  }
  svgElement("text", { x: margin + inner / 2, y: size - 3, "text-anchor": "middle" }, svg).textContent = "recall";
  const label = svgElement("text", { x: 10, y: 10 + inner / 2, "text-anchor": "middle" }, svg);
  label.textContent = "precision";
  label.setAttribute("transform", `rotate(-90 10 ${10 + inner / 2})`);
  const path = curve.map(([r, p], i) => `${i ? "L" : "M"}${x(r).toFixed(1)},${y(p).toFixed(1)}`).join("");
  svgElement("path", { d: path, class: "line" }, svg);
  const point = svgElement("circle", { r: 6, class: "point" }, svg);
  return (recall, precision) => {
    point.setAttribute("cx", x(recall).toFixed(1));
    point.setAttribute("cy", y(precision).toFixed(1));
  };
}

function drawDigit(canvas, pixels) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(28, 28);
  pixels.forEach((grey, i) => image.data.set([255 - grey, 255 - grey, 255 - grey, 255], 4 * i));
  context.putImageData(image, 0, 0);
}

function render({ model, el }) {
  const root = element("div", "threshold-explorer", el);
  const top = element("div", "threshold-explorer-top", root);
  element("label", "threshold-explorer-caption", top, "Threshold");
  const slider = element("input", "threshold-explorer-slider", top);
  slider.type = "range";
  slider.min = model.get("low");
  slider.max = model.get("high");
  slider.step = "any";
  const value = element("span", "threshold-explorer-threshold", top);
  const presets = element("div", "threshold-explorer-presets", root);
  for (const { label, threshold } of model.get("presets")) {
    const button = element("button", "threshold-explorer-preset", presets, label);
    button.addEventListener("click", () => {
      model.set("threshold", threshold);
      model.save_changes();
    });
  }

  const middle = element("div", "threshold-explorer-middle", root);
  const numbers = element("div", "threshold-explorer-numbers", middle);
  const measures = element("table", "threshold-explorer-measures", numbers);
  const counts = element("table", "threshold-explorer-counts", numbers);
  const header = element("tr", "", counts);
  for (const text of ["", "called not 5", "called 5"]) element("th", "", header, text);
  const cells = {};
  for (const [row, names] of [["non-5s", ["tn", "fp"]], ["5s", ["fn", "tp"]]]) {
    const line = element("tr", "", counts);
    element("th", "", line, row);
    for (const name of names) {
      cells[name] = element("td", `threshold-explorer-count threshold-explorer-${name}`, line);
      cells[name].dataset.name = name;
    }
  }
  const message = element("div", "threshold-explorer-message", numbers);
  const movePoint = curvePlot(middle, model.get("curve"));

  const strips = {};
  for (const [name, caption] of [
    ["missed", "5s just below the threshold: missed (highest scores first)"],
    ["accepted", "other digits just above it: called 5 (lowest scores first)"],
  ]) {
    const block = element("div", `threshold-explorer-strip threshold-explorer-${name}`, root);
    element("div", "threshold-explorer-strip-caption", block, caption);
    strips[name] = element("div", "threshold-explorer-images", block);
  }

  function show() {
    const shown = model.get("shown");
    if (!shown.measures) return;
    slider.value = shown.threshold;
    value.textContent = shown.threshold_text;
    value.dataset.value = String(shown.threshold);
    measures.replaceChildren();
    for (const { name, value: number, text } of shown.measures) {
      const line = element("tr", "", measures);
      element("th", "", line, name);
      const cell = element("td", "threshold-explorer-measure", line, text);
      cell.dataset.name = name;
      cell.dataset.value = String(number);
    }
    for (const [name, { value: number, text }] of Object.entries(shown.counts)) {
      cells[name].textContent = text;
      cells[name].dataset.value = String(number);
    }
    message.textContent = shown.message;
    const [precision, recall] = shown.measures.map((m) => m.value);
    movePoint(recall, precision);
    for (const name of ["missed", "accepted"]) {
      strips[name].replaceChildren();
      for (const { pixels, score } of shown[name]) {
        const figure = element("div", "threshold-explorer-image", strips[name]);
        const canvas = element("canvas", "", figure);
        canvas.width = canvas.height = 28;
        drawDigit(canvas, pixels);
        element("div", "threshold-explorer-score", figure, score);
      }
    }
    root.dataset.threshold = String(shown.threshold);
  }

  slider.addEventListener("input", () => {
    model.set("threshold", Number(slider.value));
    model.save_changes();
  });
  model.on("change:shown", show);
  show();
}

export default { render };
