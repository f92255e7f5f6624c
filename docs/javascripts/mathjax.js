// MathJax 3 for the whole site: the Markdown pages (pymdownx.arithmatex, generic mode, turns
// $…$ / $$…$$ into \(…\) / \[…\]) and the examples' Markdown cells (mkdocs-jupyter keeps $…$ as
// written). Code blocks and inline code are never typeset (MathJax skips <code> and <pre>).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true
  }
};

document$.subscribe(() => {
  if (!window.MathJax.startup || !MathJax.startup.output) return;  // first load: MathJax typesets itself
  MathJax.startup.output.clearCache()
  MathJax.typesetClear()
  MathJax.texReset()
  MathJax.typesetPromise()
})
