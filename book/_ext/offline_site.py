"""A site that reads anywhere: no page of the book needs anything from another host.

MathJax, RequireJS and the Jupyter widget manager are vendored under
``book/_static/vendor`` and configured in ``_config.yml``. The one remaining off-site
request is the notebooks' "Open in Colab" badge, an image on Google's server; this
extension swaps it, on the site only, for the copy beside this file. The notebooks
keep Google's badge for GitHub and Colab, and the badge's link is left as it is.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform

#: The image the notebooks' Colab badge shows, and the local stand-in for the site.
COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = Path(__file__).with_name("colab-badge.svg")


class LocalColabBadge(SphinxTransform):
    """Points every image of Google's Colab badge at the local copy."""

    # Before Sphinx's image collector (doctree-read) resolves and copies images.
    default_priority = 400

    def apply(self, **kwargs: object) -> None:
        # An image URI that starts with "/" is relative to the source folder.
        local_uri = "/" + LOCAL_BADGE.relative_to(Path(self.env.srcdir)).as_posix()
        for image in self.document.findall(nodes.image):
            if image.get("uri") == COLAB_BADGE_URL:
                image["uri"] = local_uri


def setup(app: Sphinx) -> dict:
    app.add_transform(LocalColabBadge)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
