// C++: references, classes, inheritance, namespaces (pahole refuses references).
namespace app {
struct base {
    int id;
    virtual ~base() {}
};

class request : public base {
public:
    int &ref;
    const long &cref;
    int m[2][3];
    static int instances;
    request(int &r, const long &c) : ref(r), cref(c), m{} {}
    int total() const { return ref + (int)cref + m[1][2]; }
};
int request::instances = 0;
}  // namespace app

long shared_value = 5;

int use(app::request &r, int &&moved)
{
    return r.total() + moved;
}

int main()
{
    int x = 1;
    app::request r(x, shared_value);
    return use(r, 2);
}
