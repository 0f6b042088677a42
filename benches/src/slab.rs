//! Index-linked doubly linked lists over one slab of nodes: the O(1)
//! bookkeeping of the exact reference policies (LRU, ARC, LIRS).

/// No slot: the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// One node of a [`Slab`] and its neighbours in the list holding it.
#[derive(Debug, Clone, Copy)]
struct Node<T> {
    value: T,
    /// Towards the front (`head`) of the list.
    prev: u32,
    /// Towards the back (`tail`) of the list.
    next: u32,
}

/// A doubly linked list of slots in a [`Slab`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct List {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) len: usize,
}

impl List {
    pub(crate) const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// Nodes shared by any number of [`List`]s, each node in at most one list
/// at a time; released slots are reused.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    nodes: Vec<Node<T>>,
    free: Vec<u32>,
}

impl<T: Copy> Slab<T> {
    /// An empty slab with room for `capacity` nodes before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            nodes: Vec::with_capacity(capacity),
            free: Vec::new(),
        }
    }

    pub(crate) fn new() -> Self {
        Self {
            nodes: Vec::new(),
            free: Vec::new(),
        }
    }

    /// A new node holding `value`, in no list yet.
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        let node = Node {
            value,
            prev: NIL,
            next: NIL,
        };
        match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// Frees `slot`, which must be in no list, for reuse.
    pub(crate) fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }

    pub(crate) fn get(&self, slot: u32) -> T {
        self.nodes[slot as usize].value
    }

    /// The slot after `slot` in its list, towards the tail; [`NIL`] at the
    /// end.
    pub(crate) fn next(&self, slot: u32) -> u32 {
        self.nodes[slot as usize].next
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut T {
        &mut self.nodes[slot as usize].value
    }

    pub(crate) fn push_front(&mut self, list: &mut List, slot: u32) {
        let old_head = list.head;
        let node = &mut self.nodes[slot as usize];
        node.prev = NIL;
        node.next = old_head;
        match old_head {
            NIL => list.tail = slot,
            h => self.nodes[h as usize].prev = slot,
        }
        list.head = slot;
        list.len += 1;
    }

    pub(crate) fn push_back(&mut self, list: &mut List, slot: u32) {
        let old_tail = list.tail;
        let node = &mut self.nodes[slot as usize];
        node.prev = old_tail;
        node.next = NIL;
        match old_tail {
            NIL => list.head = slot,
            t => self.nodes[t as usize].next = slot,
        }
        list.tail = slot;
        list.len += 1;
    }

    pub(crate) fn unlink(&mut self, list: &mut List, slot: u32) {
        let Node { prev, next, .. } = self.nodes[slot as usize];
        match prev {
            NIL => list.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => list.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
        let node = &mut self.nodes[slot as usize];
        node.prev = NIL;
        node.next = NIL;
        list.len -= 1;
    }
}
