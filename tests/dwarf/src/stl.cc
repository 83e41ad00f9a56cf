// C++ with the standard library: prints its own layout for the test to compare with the BTF.
#include <cstddef>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct item {
    std::string name;
    std::vector<int> v;
    std::map<std::string, double> m;
    std::unique_ptr<item> next;
    std::function<int(int)> fn;
    int grid[2][3];
};

template <typename T> struct box {
    T value;
    T &ref() { return value; }
};

int main()
{
    item i;
    box<long> b{3};
    i.v.push_back(1);
    i.fn = [](int x) { return x; };
    std::printf("%zu %zu %zu %zu %zu %zu %zu\n", sizeof(item), offsetof(item, name),
                offsetof(item, v), offsetof(item, m), offsetof(item, next), offsetof(item, fn),
                offsetof(item, grid));
    return (int)b.ref() + i.fn(1) + (int)i.name.size() - 4;
}
