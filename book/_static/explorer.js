// The window explorer of chapter 2: the reader sets the input length n, the
// window k, the stride s, the padding p, the dilation d and ceil mode, and sees
// every window on the padded axis, the output size by PyTorch's rule and by
// MXNet's, and where the two differ. It fills <div id="window-explorer">, runs
// in the browser alone (no server, no network) and follows poolkit: PyTorch's
// rule as poolkit.pool_output_size, MXNet's as poolkit.mxnet_pooling.
(function () {
  "use strict";

  // What the reader sets, with the range the explorer draws (wider would not fit a page).
  var PARAMETERS = [
    { key: "n", label: "n, input length", min: 1, max: 32, value: 5 },
    { key: "k", label: "k, window size", min: 1, max: 8, value: 2 },
    { key: "s", label: "s, stride", min: 1, max: 8, value: 2 },
    { key: "p", label: "p, padding", min: 0, max: 8, value: 1 },
    { key: "d", label: "d, dilation", min: 1, max: 4, value: 1 },
  ];

  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") node.textContent = attributes[name];
      else node.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  // Python's a // b, which both frameworks' size rules use (it rounds toward minus infinity).
  function floorDiv(a, b) { return Math.floor(a / b); }
  function ceilDiv(a, b) { return -floorDiv(-a, b); }

  // The reader's values, or the first that is out of range (named, with its range).
  function read(inputs) {
    var values = { ceil: inputs.ceil.checked };
    for (var i = 0; i < PARAMETERS.length; i++) {
      var parameter = PARAMETERS[i];
      var text = inputs[parameter.key].value.trim();
      var value = Number(text);
      if (text === "" || !Number.isInteger(value) || value < parameter.min || value > parameter.max) {
        return { invalid: parameter, message: parameter.key + " (" + parameter.label.split(", ")[1] + ") must be a whole number from " + parameter.min + " to " + parameter.max + (text === "" ? ", and it is empty" : ", not " + text) + "." };
      }
      values[parameter.key] = value;
    }
    return { values: values };
  }

  // PyTorch's output size (torch.nn.functional.max_pool1d, poolkit.pool_output_size), or why there is none.
  function pytorchSize(q) {
    var half = floorDiv(q.k, 2);
    if (q.p > half) {
      return { error: "padding p = " + q.p + " is more than half the window: PyTorch allows p \u2264 \u230ak/2\u230b = " + half + "." };
    }
    var span = q.n + 2 * q.p - q.d * (q.k - 1) - 1;
    var rounded = q.ceil ? ceilDiv(span, q.s) + 1 : floorDiv(span, q.s) + 1;
    var steps = (q.ceil ? "\u2308" : "\u230a") + span + " / " + q.s + (q.ceil ? "\u2309" : "\u230b");
    var how = (q.ceil ? "\u2308" : "\u230a") + "(n + 2p \u2212 d(k\u22121) \u2212 1) / s" + (q.ceil ? "\u2309" : "\u230b") + " + 1 = " + steps + " + 1 = " + rounded;
    var size = rounded;
    // Ceil mode: the last window must start inside the input or the left padding.
    if (q.ceil && (rounded - 1) * q.s >= q.n + q.p) {
      size = rounded - 1;
      how += "; the last window would start at " + (rounded - 1) * q.s + ", and the right padding starts at n + p = " + (q.n + q.p) + ", so PyTorch drops it: " + size;
    }
    if (size < 1) {
      return { error: "the output would be empty: the window spans d(k\u22121) + 1 = " + (q.d * (q.k - 1) + 1) + " positions, more than the padded input's n + 2p = " + (q.n + 2 * q.p) + "." };
    }
    return { size: size, how: how };
  }

  // MXNet's output size (mx.nd.Pooling, poolkit.mxnet_pooling): 'valid' rounds down, 'full' up, with no last-window rule.
  function mxnetSize(q) {
    if (q.d !== 1) return { error: "MXNet's Pooling has no dilation: set d to 1 to compare." };
    if (q.k > q.n + 2 * q.p) {
      return { error: "the window k = " + q.k + " is longer than the padded input n + 2p = " + (q.n + 2 * q.p) + "." };
    }
    var span = q.n + 2 * q.p - q.k;
    var size = q.ceil ? ceilDiv(span, q.s) + 1 : floorDiv(span, q.s) + 1;
    var how = (q.ceil ? "\u2308" : "\u230a") + "(n + 2p \u2212 k) / s" + (q.ceil ? "\u2309" : "\u230b") + " + 1 = " +
      (q.ceil ? "\u2308" : "\u230a") + span + " / " + q.s + (q.ceil ? "\u2309" : "\u230b") + " + 1 = " + size;
    return { size: size, how: how };
  }

  // The table of windows: a row per window, a column per position of the padded axis
  // (and past it, where a ceil-mode window hangs over its end).
  function windowTable(q, sizes) {
    var count = Math.max(sizes.pytorch || 0, sizes.mxnet || 0);
    var padded = q.n + 2 * q.p;
    var columns = Math.max(padded, (count - 1) * q.s + q.d * (q.k - 1) + 1);
    function kind(column) {
      if (column >= padded) return "we-beyond";
      return column < q.p || column >= q.p + q.n ? "we-pad" : "we-input";
    }
    var positions = element("tr", {}, [element("th", { scope: "col", text: "position" })]);
    var holds = element("tr", {}, [element("th", { scope: "col", text: "holds" })]);
    for (var c = 0; c < columns; c++) {
      positions.appendChild(element("th", { scope: "col", class: kind(c), text: String(c) }));
      holds.appendChild(element("th", { scope: "col", class: kind(c), text: kind(c) === "we-input" ? "x" + (c - q.p) : kind(c) === "we-pad" ? "pad" : "\u2013" }));
    }
    positions.appendChild(element("th", { scope: "col", rowspan: "2", text: "input elements read" }));
    var body = element("tbody");
    for (var o = 0; o < count; o++) {
      var start = o * q.s;
      // Where both frameworks give a size, a window that one of them lacks is marked.
      var only = sizes.pytorch && sizes.mxnet && o >= Math.min(sizes.pytorch, sizes.mxnet) ? (o < sizes.pytorch ? "PyTorch" : "MXNet") + " only" : "";
      var row = element("tr", { class: only ? "we-only" : "" }, [element("th", { scope: "row", text: "o = " + o + (only ? " (" + only + ")" : "") })]);
      var covered = 0;
      for (var column = 0; column < columns; column++) {
        var offset = column - start;
        var tap = offset >= 0 && offset % q.d === 0 && offset / q.d < q.k;
        var where = kind(column);
        if (tap && where === "we-input") covered++;
        row.appendChild(element("td", { class: where + (tap ? " we-tap" : ""), text: tap ? "\u25cf" : "" }));
      }
      row.appendChild(element("td", { class: covered ? "" : "we-empty", text: covered ? String(covered) : "0, only padding" }));
      body.appendChild(row);
    }
    return element("table", {}, [
      element("caption", { text: count + " window" + (count === 1 ? "" : "s") + " on the padded axis (\u25cf: the elements a window reads; grey: padding; dashed: past the padded axis)" }),
      element("thead", {}, [positions, holds]),
      body,
    ]);
  }

  function build(root) {
    var form = element("form", { class: "we-form", "aria-label": "Pooling parameters" });
    var inputs = {};
    PARAMETERS.forEach(function (parameter) {
      var input = element("input", { id: "we-" + parameter.key, type: "number", min: String(parameter.min), max: String(parameter.max), step: "1", value: String(parameter.value), inputmode: "numeric" });
      inputs[parameter.key] = input;
      form.appendChild(element("div", { class: "we-field" }, [element("label", { for: input.id, text: parameter.label }), input]));
    });
    inputs.ceil = element("input", { id: "we-ceil", type: "checkbox", checked: "" });
    form.appendChild(element("div", { class: "we-field we-check" }, [
      inputs.ceil,
      element("label", { for: "we-ceil", text: "ceil mode (PyTorch's ceil_mode=True, MXNet's pooling_convention='full')" }),
    ]));
    form.addEventListener("submit", function (event) { event.preventDefault(); });

    var error = element("p", { class: "we-error", role: "alert" });
    var results = {};
    var panels = ["pytorch", "mxnet"].map(function (name) {
      var shown = {
        title: element("span", { class: "we-name" }),
        size: element("span", { class: "we-size", "data-framework": name }),
        how: element("span", { class: "we-how" }),
      };
      shown.box = element("p", { class: "we-result" }, [shown.title, document.createTextNode(": "), shown.size, element("br"), shown.how]);
      results[name] = shown;
      return shown.box;
    });
    var verdict = element("p", { class: "we-verdict" });
    var status = element("div", { class: "we-results", "aria-live": "polite" }, panels.concat([verdict]));
    var grid = element("div", { class: "we-grid", role: "region", "aria-label": "Windows on the padded axis", tabindex: "0" });

    function update() {
      var reading = read(inputs);
      PARAMETERS.forEach(function (parameter) {
        inputs[parameter.key].setAttribute("aria-invalid", String(reading.invalid === parameter));
      });
      error.textContent = reading.message || "";
      error.hidden = !reading.message;
      grid.textContent = "";
      if (reading.message) {
        Object.keys(results).forEach(function (name) {
          results[name].size.textContent = "o = ?";
          results[name].size.dataset.size = "";
          results[name].how.textContent = "";
        });
        verdict.textContent = "";
        verdict.className = "we-verdict";
        return;
      }
      var q = reading.values;
      var answers = { pytorch: pytorchSize(q), mxnet: mxnetSize(q) };
      results.pytorch.title.textContent = "PyTorch" + (q.ceil ? " (ceil_mode=True)" : "");
      results.mxnet.title.textContent = "MXNet (pooling_convention='" + (q.ceil ? "full" : "valid") + "')";
      var sizes = {};
      Object.keys(answers).forEach(function (name) {
        var answer = answers[name], shown = results[name];
        sizes[name] = answer.size;
        shown.size.textContent = answer.error ? "refused" : "o = " + answer.size;
        shown.size.dataset.size = answer.error ? "" : String(answer.size);
        shown.how.textContent = answer.error || answer.how;
        shown.box.classList.toggle("we-refused", Boolean(answer.error));
      });
      // Where both accept (d = 1, p <= k/2) they round alike, but 'full' keeps windows that ceil mode drops: MXNet has more.
      var differs = Boolean(sizes.pytorch && sizes.mxnet && sizes.pytorch !== sizes.mxnet);
      verdict.className = "we-verdict" + (differs ? " we-differs" : "");
      if (differs) {
        verdict.textContent = "The two differ: MXNet has " + sizes.mxnet + " windows, PyTorch " + sizes.pytorch + " (the highlighted rows are MXNet's alone).";
      } else if (sizes.pytorch && sizes.mxnet) {
        verdict.textContent = "Both give " + sizes.pytorch + " window" + (sizes.pytorch === 1 ? "." : "s.");
      } else if (sizes.pytorch || sizes.mxnet) {
        verdict.textContent = "Only " + (sizes.pytorch ? "PyTorch" : "MXNet") + " accepts these parameters; its windows are drawn.";
      } else {
        verdict.textContent = "Neither framework accepts these parameters.";
      }
      Object.keys(results).forEach(function (name) { results[name].box.classList.toggle("we-differs", differs); });
      if (sizes.pytorch || sizes.mxnet) grid.appendChild(windowTable(q, sizes));
    }

    form.addEventListener("input", update);
    form.addEventListener("change", update);
    root.textContent = "";
    root.appendChild(form);
    root.appendChild(error);
    root.appendChild(status);
    root.appendChild(grid);
    update();
  }

  function start() {
    var root = document.getElementById("window-explorer");
    if (root) build(root);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
