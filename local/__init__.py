"""The local stack: control-plane emulator, Cloud Storage emulator, function runner, scheduler."""
