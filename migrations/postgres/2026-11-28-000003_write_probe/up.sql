-- Scratch rows that /ready writes and removes while writes are failing, to find out when they
-- work again (they take new pages, as real writes do).
CREATE TABLE write_probe (id BIGSERIAL PRIMARY KEY, filler BYTEA NOT NULL);
