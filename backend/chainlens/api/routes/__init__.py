"""One router per route family (Compiler Explorer's one small controller per family):
the page, the service's facts, runs, and the stream."""
