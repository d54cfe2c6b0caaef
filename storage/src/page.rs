//! Keyset pagination. Ids are UUID v7 and so sort by creation: "everything
//! after this id" is a stable cursor that neither skips nor repeats rows when
//! others are inserted meanwhile.

use uuid::Uuid;

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
}
