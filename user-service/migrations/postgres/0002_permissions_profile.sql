-- Django's permission model and profile fields (PostgreSQL).
-- A superuser has every permission without rows here; it is not implied staff.
ALTER TABLE users ADD COLUMN IF NOT EXISTS is_staff     BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN IF NOT EXISTS is_superuser BOOLEAN NOT NULL DEFAULT FALSE;

-- Permissions are `app_label.codename` strings, checked by the admin
-- commands; there is no permission catalogue to keep in step with an app.
CREATE TABLE IF NOT EXISTS user_permissions (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    permission TEXT   NOT NULL,
    PRIMARY KEY (user_id, permission)
);

CREATE TABLE IF NOT EXISTS group_permissions (
    group_id   BIGINT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    permission TEXT   NOT NULL,
    PRIMARY KEY (group_id, permission)
);

-- Fields stored from the claims named by ALB_OIDC_PROFILE_CLAIMS.
CREATE TABLE IF NOT EXISTS user_profile (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    field   TEXT   NOT NULL,
    value   TEXT   NOT NULL,
    PRIMARY KEY (user_id, field)
);
