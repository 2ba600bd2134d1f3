-- Who caused an event (issue 11): the API key's name, 'anonymous' with auth off, null for the
-- workers' own events. Also in the event's metadata; a column so that ?actor= filters on it.
ALTER TABLE events ADD COLUMN actor TEXT;
