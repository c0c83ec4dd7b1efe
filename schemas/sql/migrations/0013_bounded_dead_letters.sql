-- Bounded dead letters (issue 17): a payload over 256 KiB (MAX_PAYLOAD_BYTES; too_large,
-- or any other reason a message that large was refused for) is kept as its first 4 KiB
-- (DEAD_LETTER_HEAD_BYTES, schemas/messages.py). Every dead letter records the whole
-- payload's size and SHA-256, so a head can still be matched against the device's copy,
-- and lists read a short preview and these instead of the payload. A row whose payload is
-- shorter than payload_size holds only the head: replay skips it.

ALTER TABLE dead_letters
    ADD COLUMN payload_size integer,
    ADD COLUMN payload_sha256 bytea;

-- Existing rows: size and digest of the payload as stored (it is whole), and an oversized
-- payload cut as the writer now cuts it (every right-hand side reads the old payload).
UPDATE dead_letters
SET payload_size = octet_length(payload),
    payload_sha256 = sha256(payload),
    payload = CASE WHEN octet_length(payload) > 262144
                   THEN substring(payload FROM 1 FOR 4096) ELSE payload END;

ALTER TABLE dead_letters
    ALTER COLUMN payload_size SET NOT NULL,
    ALTER COLUMN payload_sha256 SET NOT NULL,
    ADD CONSTRAINT dead_letters_payload_size_check CHECK (payload_size >= octet_length(payload)),
    ADD CONSTRAINT dead_letters_payload_sha256_check CHECK (octet_length(payload_sha256) = 32);
