"""The light/dark switch in the sidebar.

Streamlit has no API to change a viewer's theme, and its own menu is hidden
here (``toolbarMode = "minimal"``). With no choice made the app follows the
system setting, as Streamlit does. A choice is kept in a cookie of this
browser (so every page, a reload and a deep link open in it) and applied by
answering Streamlit's own "does the system prefer dark?" question with it:
Streamlit re-reads that answer when a page is printed (``afterprint``), so
the theme changes in place and nothing on the page is lost.
"""

from __future__ import annotations

import json

import streamlit as st

COOKIE = "memlab_theme"
_BOX, _CHOSEN = "_theme_box", "_theme_chosen"
_LABELS = {"light": ":material/light_mode: Light", "dark": ":material/dark_mode: Dark"}

# Runs in the page (not in a frame). ``asked`` is the choice just made, or null: then the cookie's is applied.
# It acts only when the choice differs from the one in place: each re-render of the app's theme redraws
# every widget, which would undo a choice being made in one at that moment.
_SCRIPT = """<script>
(() => {
  const asked = __ASKED__;
  if (asked) document.cookie = "__COOKIE__=" + asked + "; path=/; max-age=31536000; SameSite=Lax";
  const found = document.cookie.split("; ").find((c) => c.startsWith("__COOKIE__="));
  const want = asked || (found ? found.split("=")[1] : "system");
  if (window.__memlabTheme === want) return;
  const first = window.__memlabTheme === undefined;
  window.__memlabTheme = want;
  if (first) {
    const real = window.matchMedia.bind(window);
    window.matchMedia = (query) => {
      const answer = real(query);
      const chosen = window.__memlabTheme;
      if (chosen === "system" || !/prefers-color-scheme/.test(query)) return answer;
      const matches = /dark/.test(query) === (chosen === "dark");
      return new Proxy(answer, {
        get: (target, name) => (name === "matches" ? matches : typeof target[name] === "function"
          ? target[name].bind(target) : target[name]),
      });
    };
  }
  if (!(first && want === "system")) window.dispatchEvent(new Event("afterprint"));
})();
</script>"""


def _picked() -> None:
    st.session_state[_CHOSEN] = st.session_state[_BOX]
    st.session_state["_theme_asked"] = st.session_state[_BOX]


def current_theme() -> str:
    """The theme this browser shows: the one picked here, else the cookie's, else what Streamlit reports."""
    ss = st.session_state
    chosen = ss.get(_CHOSEN) or st.context.cookies.get(COOKIE)
    if chosen in _LABELS:
        return str(chosen)
    return "dark" if st.context.theme.type == "dark" else "light"


def theme_switch() -> None:
    """A Light / Dark control; the script that applies the choice is drawn with it on every page."""
    st.session_state[_BOX] = current_theme()
    st.segmented_control(
        "Theme",
        list(_LABELS),
        key=_BOX,
        format_func=_LABELS.__getitem__,
        required=True,
        on_change=_picked,
        help="Kept for this browser. Until you pick one, the app follows your system's setting.",
    )
    asked = st.session_state.pop("_theme_asked", None)
    if asked or not st.session_state.get("_theme_applied"):  # a choice just made, or a page (re)loaded
        st.session_state["_theme_applied"] = True
        script = _SCRIPT.replace("__ASKED__", json.dumps(asked)).replace("__COOKIE__", COOKIE)
        st.html(script, unsafe_allow_javascript=True)
