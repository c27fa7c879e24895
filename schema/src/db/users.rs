//! Users, their API tokens, groups and per-project permissions: who may call the API (seed step
//! 1, "using web-UI or API, a new build is requested") and what they may do there.
//!
//! Only a token's SHA-256 is stored; the caller compares it in constant time. What a user may do
//! in a project is decided by [`crate::permissions`], from what these methods read.

use super::{Db, DbResult, now};
use crate::model::ProjectRef;
use crate::permissions::Role;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A user of the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    /// An instance admin may do anything to any project.
    pub admin: bool,
}

fn user_from_row(row: &AnyRow) -> DbResult<User> {
    Ok(User {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        admin: row.try_get::<i64, _>(2)? != 0,
    })
}

/// A stored API token, as the check of a request needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub user: User,
    /// Hex SHA-256 of the token.
    pub token_sha256: String,
    /// Seconds since the epoch.
    pub expires_on: i64,
}

impl Db {
    /// Makes a user; `None` when the name is taken.
    pub async fn create_user(&self, name: &str, admin: bool) -> DbResult<Option<User>> {
        let done = sqlx::query(
            "INSERT INTO users (name, admin, created_on) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(i64::from(admin))
        .bind(now())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.user(name).await
    }

    /// The user called `name`.
    pub async fn user(&self, name: &str) -> DbResult<Option<User>> {
        sqlx::query("SELECT id, name, admin FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// Stores an API token of `user` under `login`.
    pub async fn add_api_token(
        &self,
        user: &User,
        login: &str,
        token_sha256: &str,
        expires_on: i64,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (login, user_id, token_sha256, created_on, expires_on) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(login)
        .bind(user.id)
        .bind(token_sha256)
        .bind(now())
        .bind(expires_on)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The token stored under `login`, expired or not, with its user.
    pub async fn api_token(&self, login: &str) -> DbResult<Option<StoredToken>> {
        let row = sqlx::query(
            "SELECT u.id, u.name, u.admin, t.token_sha256, t.expires_on \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.login = $1",
        )
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredToken {
                user: user_from_row(&row)?,
                token_sha256: row.try_get(3)?,
                expires_on: row.try_get(4)?,
            })
        })
        .transpose()
    }

    /// Makes `user` a member of `@group`.
    pub async fn add_group_member(&self, group: &str, user: &User) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO group_members (group_name, user_id) VALUES ($1, $2) \
             ON CONFLICT (group_name, user_id) DO NOTHING",
        )
        .bind(group)
        .bind(user.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The groups `user` is a member of, without the `@`.
    pub async fn user_groups(&self, user: &User) -> DbResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT group_name FROM group_members WHERE user_id = $1 ORDER BY group_name",
        )
        .bind(user.id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// Gives `user` `role` in `project` (replacing what they had); false when the project does
    /// not exist.
    pub async fn grant(&self, project: &ProjectRef, user: &User, role: Role) -> DbResult<bool> {
        let Some(project_id) = self.project_id(project).await? else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO project_permissions (project_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = $3",
        )
        .bind(project_id)
        .bind(user.id)
        .bind(role.name())
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// The role `user` was given in `project`, if any (owners and admins need none).
    pub async fn granted_role(&self, project: &ProjectRef, user: &User) -> DbResult<Option<Role>> {
        let row = sqlx::query(
            "SELECT pp.role FROM project_permissions pp JOIN projects p ON p.id = pp.project_id \
             WHERE p.owner = $1 AND p.name = $2 AND pp.user_id = $3",
        )
        .bind(&project.owner)
        .bind(&project.project)
        .bind(user.id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let name: String = row.try_get(0)?;
        Role::from_name(&name)
            .map(Some)
            .ok_or_else(|| super::DbError::Corrupt(format!("project role {name:?}")))
    }

    async fn project_id(&self, project: &ProjectRef) -> DbResult<Option<i64>> {
        sqlx::query("SELECT id FROM projects WHERE owner = $1 AND name = $2")
            .bind(&project.owner)
            .bind(&project.project)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(Into::into)
    }
}
