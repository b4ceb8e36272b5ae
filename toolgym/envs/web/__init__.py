"""The web environment: MiniWoB-style tasks on local pages in a real headless Chromium.

``toolgym/Web-v0`` (class :class:`~toolgym.envs.web.env.WebEnv`) runs each
episode in a ``toolgym/web`` sandbox (``docker/web/``): a resident driver
holds one Chromium page, the agent acts through :func:`web_tools`, and
:class:`PageStateVerifier` reads the page's own verdict on its DOM state.
"""

from toolgym.envs.web.kinds import KINDS, Draft, scrolls_to_row
from toolgym.envs.web.prompts import SYSTEM_PROMPT
from toolgym.envs.web.tasks import page_url, web_tasks
from toolgym.envs.web.tools import web_tools
from toolgym.envs.web.verifier import PageStateVerifier, same_page

__all__ = [
    "KINDS",
    "SYSTEM_PROMPT",
    "Draft",
    "PageStateVerifier",
    "page_url",
    "same_page",
    "scrolls_to_row",
    "web_tasks",
    "web_tools",
]
