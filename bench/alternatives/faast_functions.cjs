// The function every system in the local-overhead benchmark runs: x → x².
exports.task = function task(x) {
  return x * x;
};
