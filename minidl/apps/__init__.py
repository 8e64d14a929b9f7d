"""Applications that join minidl and the audio front end."""
