-- vCards users published themselves (XEP-0054 vcard-temp set); without
-- one, the card is made from the org data.
CREATE TABLE xmpp_vcards (
    user_id    BIGINT PRIMARY KEY,
    vcard      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
