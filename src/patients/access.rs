//! The only definition of who may see a patient: its creator, and admins.
//! `sees_only` is the rule; SQL (`visible_to`) and checks made outside SQL
//! (`may_see`: the subscription filter) are both built from it.

use diesel::{
    BoxableExpression, IntoSql as _, SelectableExpression, expression_methods::ExpressionMethods as _, pg::Pg,
    sql_types::Bool,
};

use uuid::Uuid;

use crate::{db::schema::patients, viewer::Role, viewer::Viewer};

/// The rule: the one creator whose patients the viewer may see, or `None`
/// when the viewer may see every patient (admins). SQL written out by hand
/// binds it (`$n IS NULL OR created_by = $n`).
pub fn sees_only(viewer: &Viewer) -> Option<Uuid> {
    match viewer.role {
        Role::Admin => None,
        Role::User => Some(viewer.user_id),
    }
}

/// Whether the viewer may see a patient created by `owner` (`None`: a
/// patient that is gone, which only those who see every patient may hear
/// of).
pub fn may_see(viewer: &Viewer, owner: Option<Uuid>) -> bool {
    match sees_only(viewer) {
        None => true,
        Some(creator) => owner == Some(creator),
    }
}

/// The SQL condition "the viewer may see this patient", for any query whose
/// FROM clause has `patients`.
pub fn visible_to<QS>(viewer: &Viewer) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>>
where
    patients::created_by: SelectableExpression<QS>,
{
    match sees_only(viewer) {
        None => Box::new(true.into_sql::<Bool>()),
        Some(creator) => Box::new(patients::created_by.eq(creator)),
    }
}

#[cfg(test)]
mod tests {
    use diesel::{QueryDsl as _, debug_query};

    use super::*;

    fn viewer(role: Role) -> Viewer {
        Viewer {
            user_id: Uuid::new_v4(),
            role,
            expires_at: 0,
            token_version: 0,
            session_id: None,
            request_id: None,
        }
    }

    fn sql(viewer: &Viewer) -> String {
        let query = patients::table
            .select(patients::id)
            .filter(visible_to::<patients::table>(viewer));
        debug_query::<Pg, _>(&query).to_string()
    }

    #[test]
    fn a_user_sees_their_own_patients_and_an_admin_sees_all() {
        let (ann, admin) = (viewer(Role::User), viewer(Role::Admin));
        let someone = Some(Uuid::new_v4());
        assert!(may_see(&ann, Some(ann.user_id)));
        assert!(!may_see(&ann, someone));
        assert!(!may_see(&ann, None));
        assert!(may_see(&admin, someone));
        assert!(may_see(&admin, Some(admin.user_id)));
        assert!(may_see(&admin, None));

        // The SQL says the same: the user's own id, or no condition at all.
        let mine = sql(&ann);
        assert!(mine.contains(r#""patients"."created_by" = $1"#), "{mine}");
        assert!(mine.contains(&ann.user_id.to_string()), "{mine}");
        let all = sql(&admin);
        assert!(!all.contains("created_by"), "{all}");
        assert!(all.ends_with("WHERE $1 -- binds: [true]"), "{all}");
    }
}
