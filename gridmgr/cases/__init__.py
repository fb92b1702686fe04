"""Cases: reports become cases that go around the closed loop (collect → file → dispatch →
handle → feed back → check and close → evaluate), timed and recorded."""
