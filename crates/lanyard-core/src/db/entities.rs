//! sea-orm entities, one per table (see `migrations/`). Only `db` sees these.

pub(super) mod users {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) sub: String,
        pub(crate) username: String,
        #[sea_orm(unique)]
        pub(crate) username_key: String,
        pub(crate) email: Option<String>,
        pub(crate) display_name: Option<String>,
        pub(crate) password_hash: String,
        pub(crate) disabled: bool,
        pub(crate) created_at: i64,
        pub(crate) updated_at: i64,
        pub(crate) external_id: Option<String>,
        pub(crate) email_verified: bool,
        pub(crate) pending_email: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod clients {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clients")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) client_id: String,
        pub(crate) secret_hash: Option<String>,
        /// `ClientSettings` as JSON.
        pub(crate) settings: String,
        pub(crate) created_at: i64,
        pub(crate) updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod signing_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) kid: String,
        pub(crate) alg: String,
        pub(crate) private_key: Vec<u8>,
        pub(crate) state: String,
        pub(crate) created_at: i64,
        pub(crate) usable_until: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod server_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "server_keys")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) name: String,
        pub(crate) secret: Vec<u8>,
        pub(crate) created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod audit_events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub(crate) struct Model {
        #[sea_orm(primary_key)]
        pub(crate) id: i64,
        pub(crate) at: i64,
        pub(crate) actor: String,
        pub(crate) action: String,
        pub(crate) target: Option<String>,
        pub(crate) outcome: String,
        pub(crate) request_id: Option<String>,
        pub(crate) detail: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod revocations {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revocations")]
    pub(crate) struct Model {
        #[sea_orm(primary_key)]
        pub(crate) id: i64,
        pub(crate) kind: String,
        pub(crate) value: String,
        pub(crate) at: i64,
        pub(crate) until: i64,
        pub(crate) recorded_at: i64,
        pub(crate) actor: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod consents {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consents")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) sub: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) client_id: String,
        pub(crate) scopes: String,
        pub(crate) granted_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod factors {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "factors")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) id: String,
        pub(crate) sub: String,
        pub(crate) kind: String,
        pub(crate) name: String,
        pub(crate) secret: Option<Vec<u8>>,
        pub(crate) data: Option<String>,
        pub(crate) created_at: i64,
        pub(crate) last_used_at: Option<i64>,
        pub(crate) last_step: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod recovery_codes {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recovery_codes")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) sub: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) code_hash: String,
        pub(crate) created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod user_groups {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_groups")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) id: String,
        pub(crate) name: String,
        #[sea_orm(unique)]
        pub(crate) name_key: String,
        pub(crate) description: Option<String>,
        pub(crate) external_id: Option<String>,
        pub(crate) created_at: i64,
        pub(crate) updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod group_members {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "group_members")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) group_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) sub: String,
        pub(crate) added_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod app_roles {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "app_roles")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) client_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) name: String,
        pub(crate) description: Option<String>,
        pub(crate) created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod role_grants {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "role_grants")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) client_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) role: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) holder_kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) holder: String,
        pub(crate) granted_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod mail_outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mail_outbox")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) id: String,
        pub(crate) recipient: String,
        pub(crate) kind: String,
        pub(crate) subject: String,
        pub(crate) body: Option<Vec<u8>>,
        pub(crate) created_at: i64,
        pub(crate) next_attempt_at: i64,
        pub(crate) attempts: i32,
        pub(crate) claimed_until: Option<i64>,
        pub(crate) sent_at: Option<i64>,
        pub(crate) failed_at: Option<i64>,
        pub(crate) last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod mail_links {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mail_links")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) token_hash: String,
        pub(crate) sub: String,
        pub(crate) purpose: String,
        pub(crate) email: String,
        pub(crate) created_at: i64,
        pub(crate) expires_at: i64,
        pub(crate) used_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod ssf_streams {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ssf_streams")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) stream_id: String,
        pub(crate) client_id: String,
        pub(crate) config: String,
        pub(crate) authorization_header: Option<Vec<u8>>,
        pub(crate) status: String,
        pub(crate) reason: Option<String>,
        pub(crate) created_at: i64,
        pub(crate) updated_at: i64,
        pub(crate) verified_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod ssf_subjects {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ssf_subjects")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) stream_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) subject_key: String,
        pub(crate) subject: String,
        pub(crate) included: bool,
        pub(crate) added_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod event_outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_outbox")]
    pub(crate) struct Model {
        #[sea_orm(primary_key)]
        pub(crate) seq: i64,
        pub(crate) channel: String,
        pub(crate) jti: String,
        pub(crate) payload: String,
        pub(crate) created_at: i64,
        pub(crate) attempts: i32,
        pub(crate) done_at: Option<i64>,
        pub(crate) outcome: Option<String>,
        pub(crate) last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod event_channels {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_channels")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) channel: String,
        pub(crate) kind: String,
        pub(crate) active: bool,
        pub(crate) next_attempt_at: Option<i64>,
        pub(crate) attempts: i32,
        pub(crate) claimed_until: Option<i64>,
        pub(crate) last_error: Option<String>,
        pub(crate) last_delivered_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
