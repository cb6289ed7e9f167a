/** Small dense-vector helpers over Float32Array; hot paths, so plain loops. */

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function randomVector(dimension: number, scale: number, normal: () => number): Float32Array {
  const v = new Float32Array(dimension);
  for (let i = 0; i < dimension; i++) v[i] = normal() * scale;
  return v;
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}
