import { dot, sigmoid } from './vectors.ts';

/**
 * One SGD step of Bayesian Personalized Ranking (Rendle et al., 2009) for a (user, positive, negative) triple:
 * maximise log σ(u·i − u·j) with L2 decay.
 *
 * Why BPR: the stream has implicit feedback only (views, clicks, purchases; ratings become "interacted"),
 * and BPR learns exactly what the candidates stage asks of the vectors, a ranking of items for a user by
 * inner product. One step touches three vectors of size d, so it runs at stream speed, and it is well defined
 * from a user's or an item's first event, which matrix factorisation by batch solvers is not.
 *
 * Mutates `user` in place and adds the item updates into `positiveDelta` / `negativeDelta`, because items are
 * shared between pipeline instances and written as commutative deltas (see `store/port.ts`). `positive` and
 * `negative` are the current item vectors; the caller applies the deltas to them.
 */
export function bprStep(
  user: Float32Array,
  positive: Float32Array,
  negative: Float32Array,
  positiveDelta: Float32Array,
  negativeDelta: Float32Array,
  learningRate: number,
  regularization: number,
): number {
  const margin = dot(user, positive) - dot(user, negative);
  const g = sigmoid(-margin);
  for (let d = 0; d < user.length; d++) {
    const u = user[d]!;
    const i = positive[d]!;
    const j = negative[d]!;
    user[d] = u + learningRate * (g * (i - j) - regularization * u);
    positiveDelta[d] = positiveDelta[d]! + learningRate * (g * u - regularization * i);
    negativeDelta[d] = negativeDelta[d]! + learningRate * (-g * u - regularization * j);
  }
  return margin;
}
