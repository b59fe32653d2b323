"""Streamlit helpers shared by the pages: the cached lab, the sidebar, trace and chart views."""
