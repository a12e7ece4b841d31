// Glue for the vendored Jupyter widget manager, loaded between RequireJS and
// vendor/html-manager-*/embed-amd.js on pages with saved widgets (nb_ipywidgets_js in
// _config.yml). Nothing here fetches anything.
(function () {
  "use strict";
  var here = document.currentScript && document.currentScript.src;
  if (!here || typeof window.requirejs === "undefined") {
    return;
  }
  // The folder of embed-amd.js and of the Font Awesome fonts its widgets' icons use.
  var assets = new URL("vendor/html-manager-1.0.15/", here).href;

  // The manager's webpack bundles put their fonts' URLs beside the URL that RequireJS
  // gives each bundled module, by default <page folder>/@jupyter-widgets/...; so the
  // icons would 404. Give every module that embed-amd.js defines a URL in that folder
  // (nothing is fetched from these URLs: embed-amd.js defines the modules itself).
  var paths = {};
  [
    "@jupyter-widgets/base",
    "@jupyter-widgets/base7",
    "@jupyter-widgets/controls",
    "@jupyter-widgets/controls7",
    "@jupyter-widgets/html-manager",
    "@jupyter-widgets/html-manager/dist/libembed-amd",
  ].forEach(function (id) {
    paths[id] = assets + "embed-amd";
  });
  window.requirejs.config({ paths: paths });
  window.__jupyter_widgets_assets_path__ = assets;

  // ipywidgets typesets a widget's label with the MathJax 2 call
  // MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]); the book loads MathJax 3,
  // which has no Hub, so every labelled widget would throw. Translate that call.
  function addHub() {
    var mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub || !mathjax.startup || !mathjax.startup.promise) {
      return;
    }
    mathjax.Hub = {
      Queue: function () {
        Array.prototype.forEach.call(arguments, function (call) {
          if (Array.isArray(call) && call[0] === "Typeset") {
            var elements = call[2] ? [call[2]] : undefined;
            mathjax.startup.promise = mathjax.startup.promise
              .then(function () {
                return mathjax.typesetPromise(elements);
              })
              .catch(function (error) {
                console.error("MathJax could not typeset a widget: " + error);
              });
          }
        });
      },
    };
  }
  // MathJax is a deferred script: it has run by DOMContentLoaded; the widgets are
  // drawn later, on load.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", addHub);
  } else {
    addHub();
  }
})();
