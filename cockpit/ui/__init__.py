"""The Textual cockpit: the live app, the replay app, their dialogs and themes (views of State)."""
