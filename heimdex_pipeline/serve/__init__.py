"""`heimdex serve`: the search service and its web page."""
