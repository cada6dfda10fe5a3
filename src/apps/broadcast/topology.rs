//! Who gossips with whom: named shapes, or an explicit list of neighbours.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A named topology over nodes `0..n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Each node with the next, and the last with the first.
    #[default]
    Ring,
    /// Each node with the next.
    Line,
    /// Node 0 with every other.
    Star,
    /// A binary tree: node `i` with `2i + 1` and `2i + 2`.
    Tree,
    /// A square-ish grid, row by row: each node with its right and lower neighbours.
    Grid,
    /// Every node with every other.
    Full,
}

/// The neighbours of each of `n` nodes in `shape`, each list sorted, every edge both ways.
pub fn neighbours(shape: Shape, n: u32) -> Vec<Vec<u32>> {
    let mut edges: Vec<(u32, u32)> = Vec::new();
    match shape {
        Shape::Ring => {
            edges.extend((1..n).map(|i| (i - 1, i)));
            if n > 2 {
                edges.push((n - 1, 0));
            }
        }
        Shape::Line => edges.extend((1..n).map(|i| (i - 1, i))),
        Shape::Star => edges.extend((1..n).map(|i| (0, i))),
        Shape::Tree => edges.extend((1..n).map(|i| ((i - 1) / 2, i))),
        Shape::Grid => {
            let width = (f64::from(n).sqrt().ceil() as u32).max(1);
            for i in 0..n {
                if (i + 1) % width != 0 && i + 1 < n {
                    edges.push((i, i + 1));
                }
                if i + width < n {
                    edges.push((i, i + width));
                }
            }
        }
        Shape::Full => {
            for i in 0..n {
                edges.extend((i + 1..n).map(|j| (i, j)));
            }
        }
    }
    symmetric(n, edges)
}

/// At most how many edges `shape` has over `n` nodes, computed without building them.
pub fn edge_bound(shape: Shape, n: u32) -> u64 {
    let n = u64::from(n);
    match shape {
        Shape::Ring | Shape::Line | Shape::Star | Shape::Tree => n,
        Shape::Grid => 2 * n,
        Shape::Full => n * n.saturating_sub(1) / 2,
    }
}

/// Makes every edge of an explicit neighbour list go both ways, dropping self-loops.
pub fn undirected(lists: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let n = u32::try_from(lists.len()).unwrap_or(u32::MAX);
    let edges = lists.iter().enumerate().flat_map(|(i, list)| {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        list.iter().map(move |j| (i, *j))
    });
    symmetric(n, edges.collect())
}

fn symmetric(n: u32, edges: Vec<(u32, u32)>) -> Vec<Vec<u32>> {
    let mut sets: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); n as usize];
    for (a, b) in edges {
        if a != b && a < n && b < n {
            sets[a as usize].insert(b);
            sets[b as usize].insert(a);
        }
    }
    sets.into_iter()
        .map(|set| set.into_iter().collect())
        .collect()
}

/// The nodes node 0 cannot reach (empty when the topology is connected).
pub fn unreachable(neighbours: &[Vec<u32>]) -> Vec<u32> {
    let mut seen = vec![false; neighbours.len()];
    let mut stack = Vec::new();
    if !neighbours.is_empty() {
        seen[0] = true;
        stack.push(0usize);
    }
    while let Some(node) = stack.pop() {
        for next in &neighbours[node] {
            let next = *next as usize;
            if !seen[next] {
                seen[next] = true;
                stack.push(next);
            }
        }
    }
    seen.iter()
        .enumerate()
        .filter(|(_, seen)| !**seen)
        .map(|(index, _)| u32::try_from(index).unwrap_or(u32::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_named_topologies_are_connected_and_symmetric() {
        for shape in [
            Shape::Ring,
            Shape::Line,
            Shape::Star,
            Shape::Tree,
            Shape::Grid,
            Shape::Full,
        ] {
            for n in [1, 2, 3, 7, 25] {
                let lists = neighbours(shape, n);
                assert_eq!(lists.len(), n as usize);
                assert!(unreachable(&lists).is_empty(), "{shape:?} {n}");
                for (i, list) in lists.iter().enumerate() {
                    for j in list {
                        assert!(lists[*j as usize].contains(&(i as u32)), "{shape:?} {n}");
                    }
                }
            }
        }
        assert_eq!(neighbours(Shape::Ring, 4)[0], vec![1, 3]);
        for shape in [
            Shape::Ring,
            Shape::Line,
            Shape::Star,
            Shape::Tree,
            Shape::Grid,
            Shape::Full,
        ] {
            for n in [1, 2, 3, 7, 25, 100] {
                let edges: usize = neighbours(shape, n).iter().map(Vec::len).sum::<usize>() / 2;
                assert!(edges as u64 <= edge_bound(shape, n), "{shape:?} {n}");
            }
        }
        assert_eq!(edge_bound(Shape::Full, 100), 4950);
        assert_eq!(neighbours(Shape::Grid, 9)[4], vec![1, 3, 5, 7]);
    }

    #[test]
    fn simulated_explicit_neighbours_go_both_ways_and_gaps_are_found() {
        let lists = undirected(&[vec![1], vec![], vec![3], vec![]]);
        assert_eq!(lists, vec![vec![1], vec![0], vec![3], vec![2]]);
        assert_eq!(unreachable(&lists), vec![2, 3]);
    }
}
