-- A client's logo and home page (RFC 7591 logo_uri, client_uri), shown on
-- the sign-in, code and consent pages and the authorization error page.
ALTER TABLE clients ADD COLUMN logo_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN client_uri TEXT NOT NULL DEFAULT '';
