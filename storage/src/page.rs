//! Keyset pagination. Ids are UUID v7 and so sort by creation: "everything
//! after this id" is a stable cursor that neither skips nor repeats rows when
//! others are inserted meanwhile.
//!
//! Every listing pages the same way: fetch `limit + 1` rows past the cursor
//! in key order, keep `limit`, and when the extra row came, continue after
//! the last kept one. `Keyset` says which key, which way and from where;
//! `fetch` runs it.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select, Value};
use uuid::Uuid;

use crate::StorageError;

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The id to continue after, when there is more.
    pub next: Option<Uuid>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in key order: the
    /// extra row only tells that another page exists.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u64, key: impl Fn(&T) -> Uuid) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&key)
        } else {
            None
        };
        Page { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// Where one page of a listing starts and how long it is.
#[derive(Debug, Clone)]
pub struct Keyset<C> {
    key: C,
    order: Order,
    /// The key of the last row of the previous page.
    cursor: Option<Value>,
    limit: u64,
}

impl<C: ColumnTrait> Keyset<C> {
    /// Ascending on `key` (oldest first for a UUID v7 id), continuing
    /// after `cursor`.
    pub fn after(key: C, cursor: Option<impl Into<Value>>, limit: u64) -> Self {
        Keyset {
            key,
            order: Order::Asc,
            cursor: cursor.map(Into::into),
            limit,
        }
    }

    /// Descending on `key` (newest first), continuing below `cursor`.
    pub fn before(key: C, cursor: Option<impl Into<Value>>, limit: u64) -> Self {
        Keyset {
            key,
            order: Order::Desc,
            cursor: cursor.map(Into::into),
            limit,
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// `query` ordered on the key, restricted to rows past the cursor, and
    /// cut at `limit + 1` rows: the extra one tells that a next page exists.
    pub fn apply<Q>(&self, query: Q) -> Q
    where
        Q: QueryFilter + QueryOrder + QuerySelect,
    {
        let mut query = query
            .order_by(self.key, self.order.clone())
            .limit(self.limit.saturating_add(1));
        if let Some(cursor) = &self.cursor {
            let past = match self.order {
                Order::Desc => self.key.lt(cursor.clone()),
                _ => self.key.gt(cursor.clone()),
            };
            query = query.filter(past);
        }
        query
    }
}

/// One page of `query`; `id` is what a row's `next` cursor shows (the key
/// itself, or the id of the row where the key is another column).
pub async fn fetch<E>(
    conn: &impl ConnectionTrait,
    query: Select<E>,
    keyset: Keyset<E::Column>,
    id: impl Fn(&E::Model) -> Uuid,
) -> Result<Page<E::Model>, StorageError>
where
    E: EntityTrait,
{
    let rows = keyset.apply(query).all(conn).await?;
    Ok(Page::from_overfetch(rows, keyset.limit, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overfetch_sets_cursor_only_when_more_exist() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let page = Page::from_overfetch(ids.clone(), 2, |u| *u);
        assert_eq!(page.items, ids[..2]);
        assert_eq!(page.next, Some(ids[1]));
        let page = Page::from_overfetch(ids.clone(), 3, |u| *u);
        assert_eq!(page.next, None);
    }

    #[test]
    fn keyset_builds_the_query_the_listings_wrote_by_hand() {
        use sea_orm::{DbBackend, QueryTrait};

        use crate::entity::job;

        let sql = |q: Select<job::Entity>| q.build(DbBackend::Postgres).to_string();
        let cursor = Uuid::now_v7();
        let base = || job::Entity::find().filter(job::Column::Kind.eq("export"));

        let by_hand = base()
            .order_by_asc(job::Column::Id)
            .limit(21)
            .filter(job::Column::Id.gt(cursor));
        assert_eq!(
            sql(Keyset::after(job::Column::Id, Some(cursor), 20).apply(base())),
            sql(by_hand)
        );

        let by_hand = base()
            .order_by_desc(job::Column::Id)
            .limit(21)
            .filter(job::Column::Id.lt(cursor));
        assert_eq!(
            sql(Keyset::before(job::Column::Id, Some(cursor), 20).apply(base())),
            sql(by_hand)
        );

        let first = base().order_by_asc(job::Column::Id).limit(21);
        assert_eq!(
            sql(Keyset::after(job::Column::Id, None::<Uuid>, 20).apply(base())),
            sql(first)
        );
    }
}
